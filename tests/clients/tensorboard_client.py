"""TensorBoard's own reader on an ae-tch log folder: prints one JSON object with what
EventAccumulator reads back (scalars with steps and float32 values, image sizes, histogram
counts, the hparams plugin's session records), for tests/it/tensorboard.rs to compare with
the run's metrics.csv and model.json.

    python tensorboard_client.py LOG_DIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0, "histograms": 0})
ea.Reload()
tags = ea.Tags()
out = {"scalars": {}, "images": {}, "histograms": {}, "hparams": {}, "session_end": None}
for tag in tags["scalars"]:
    out["scalars"][tag] = [[e.step, e.value] for e in ea.Scalars(tag)]
for tag in tags["images"]:
    out["images"][tag] = [[e.step, e.width, e.height] for e in ea.Images(tag)]
for tag in tags["histograms"]:
    out["histograms"][tag] = [
        [e.step, e.histogram_value.num, sum(e.histogram_value.bucket)] for e in ea.Histograms(tag)
    ]
try:
    content = ea.PluginTagToContent("hparams")
except KeyError:
    content = {}
for tag, raw in content.items():
    data = plugin_data_pb2.HParamsPluginData.FromString(raw)
    if data.HasField("session_start_info"):
        for k, v in data.session_start_info.hparams.items():
            kind = v.WhichOneof("kind")
            out["hparams"][k] = getattr(v, kind)
    if data.HasField("session_end_info"):
        out["session_end"] = data.session_end_info.status
print(json.dumps(out))

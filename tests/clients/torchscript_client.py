"""PyTorch as the client of `ae-tch export -o model.pt`: torch.jit.load with no model code,
then forward, encode and decode on the rows ae-tch computed them for; prints the largest
absolute difference from ae-tch's own outputs, and what the module's description says.

    python torchscript_client.py MODEL.pt REFERENCE.safetensors
REFERENCE holds x (inputs), y (forward), z (encode) and d (decode of z), from ae-tch.
"""
import json
import sys

import torch
from safetensors.torch import load_file

module = torch.jit.load(sys.argv[1])
ref = load_file(sys.argv[2])
with torch.no_grad():
    diffs = {
        "forward": (module(ref["x"]) - ref["y"]).abs().max().item(),
        "encode": (module.encode(ref["x"]) - ref["z"]).abs().max().item(),
        "decode": (module.decode(ref["z"]) - ref["d"]).abs().max().item(),
    }
about = json.loads(module.ae_tch)
print(json.dumps({"diffs": diffs, "max_abs_diff": max(diffs.values()), "layout": about["layout"],
                  "input": about["model"]["input"]}))

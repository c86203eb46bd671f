#!/usr/bin/env python3
"""Build a colour image-folder dataset from the npm package emoji-datasource-twitter@16.0.0.

Input: the unpacked package folder (emoji.json and img/twitter/64/*.png, 64x64 colour PNGs,
some palette-indexed, all with transparency).
Output: OUT_DIR/{train,test}/<category>/<unified>.png, byte-identical copies of the
package's PNGs, plus COPYRIGHT and categories.txt (one "<category> <train> <test>" line
per kept category).

One image per base emoji: each top-level entry's own image, never its skin-tone variants,
so near-duplicates cannot straddle train and test. The label is the entry's category,
slugged ("Smileys & Emotion" -> smileys-emotion); categories with fewer than MIN_PER_CLASS
images are dropped. An image goes to test when sha256(unified) % 5 == 0 (about 20%): no RNG,
so the split is the same with every Python. The folder is built next to OUT_DIR and renamed
into place at the end; setup.sh checks the SHA-256 of every PNG.

Standard library only: it runs with any python3.
"""
import hashlib
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

MIN_PER_CLASS = 50
TEST_MODULUS = 5  # 1 in 5 goes to test

COPYRIGHT = """\
The images in this folder are Twitter's Twemoji graphics (the jdecked/twemoji fork,
v16.0.1), taken unchanged from img/twitter/64/ of the npm package
emoji-datasource-twitter 16.0.0 (https://github.com/iamcal/emoji-data).

Copyright Twitter, Inc and other contributors.
Graphics licensed under CC-BY 4.0: https://creativecommons.org/licenses/by/4.0/

Only the folder layout (category folders, train/test split) is ae-tch's own.
"""


def slug(category: str) -> str:
    return "-".join(category.lower().replace("&", " ").split())


def is_test(unified: str) -> bool:
    return int(hashlib.sha256(unified.encode()).hexdigest(), 16) % TEST_MODULUS == 0


def collect(pkg: Path):
    """{category slug: [(unified, source png)]}, top-level entries only."""
    images = pkg / "img" / "twitter" / "64"
    by_cat = defaultdict(list)
    for entry in json.loads((pkg / "emoji.json").read_text()):
        src = images / entry["image"]
        if entry.get("has_img_twitter") and src.is_file():
            by_cat[slug(entry["category"])].append((entry["unified"], src))
    return by_cat


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_emoji_folder.py PACKAGE_DIR OUT_DIR")
    pkg, out = Path(sys.argv[1]), Path(sys.argv[2])
    by_cat = collect(pkg)
    kept = {c: v for c, v in sorted(by_cat.items()) if len(v) >= MIN_PER_CLASS}
    dropped = {c: len(v) for c, v in sorted(by_cat.items()) if len(v) < MIN_PER_CLASS}
    if not kept:
        sys.exit(f"{pkg}: no category has {MIN_PER_CLASS} twitter images")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        lines = []
        for cat, items in kept.items():
            counts = {"train": 0, "test": 0}
            for unified, src in items:
                split = "test" if is_test(unified) else "train"
                (tmp / split / cat).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp / split / cat / f"{unified}.png")
                counts[split] += 1
            lines.append(f"{cat} {counts['train']} {counts['test']}")
        (tmp / "COPYRIGHT").write_text(COPYRIGHT)
        (tmp / "categories.txt").write_text("".join(l + "\n" for l in lines))
        tmp.chmod(0o755)  # mkdtemp makes it 0700
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    total = sum(len(v) for v in kept.values())
    print(f"wrote {total} emoji in {len(kept)} categories to {out} (category train test):",
          file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    for cat, n in dropped.items():
        print(f"  dropped {cat}: {n} images, fewer than {MIN_PER_CLASS}", file=sys.stderr)


if __name__ == "__main__":
    main()

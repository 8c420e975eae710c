"""Turn bench/data/sentences.txt into bench/data/tokens.json, once, by hand (see README.md beside this file).

    python bench/data/make_tokens.py TOKENIZER_JSON

Needs the ``tokenizers`` library and a BERT-uncased ``tokenizer.json``; neither is a dependency of webml:
the bench reads only the committed ids.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent


def main() -> None:
    tokenizer = Tokenizer.from_file(sys.argv[1])
    tokenizer.no_padding()
    tokenizer.no_truncation()
    sentences = [s for s in (HERE / "sentences.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
    ids = [tokenizer.encode(s).ids for s in sentences]  # [CLS] ... [SEP], as sentence-transformers feeds them
    data = {
        "tokenizer": "bert-base-uncased WordPiece (30522 ids), from the tokenizer.json of all-MiniLM-L6-v2",
        "vocab_size": tokenizer.get_vocab_size(),
        "sentences": sentences,
        "input_ids": ids,
    }
    # One sentence's ids a line, so that a diff of the file reads.
    rows = ",\n  ".join(json.dumps(row) for row in data.pop("input_ids"))
    head = json.dumps(data, indent=1)[:-2]
    (HERE / "tokens.json").write_text(f'{head},\n "input_ids": [\n  {rows}\n ]\n}}\n', encoding="utf-8")


if __name__ == "__main__":
    main()

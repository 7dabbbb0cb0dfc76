"""chainer_vfbn.runs.strict_json: NaN-free JSON, its two layouts, atomic."""
import glob
import json
import os

import pytest

from chainer_vfbn.runs import strict_json
from support import REPO

RECORDS = sorted(glob.glob(os.path.join(REPO, 'docs', 'results', '**',
                                        '*.json'), recursive=True))


def test_json_safe_writes_strict_json():
    obj = {'a': float('nan'), 'b': [1.5, float('inf')], 'c': 'x', 'd': 2}
    text = json.dumps(strict_json.json_safe(obj), allow_nan=False)
    assert json.loads(text) == {'a': None, 'b': [1.5, None], 'c': 'x',
                                'd': 2}


def test_a_run_file_is_sorted_strict_and_atomic(tmp_path):
    path = str(tmp_path / 'new' / 'summary.json')   # the folder is made
    strict_json.write_json(path, {'b': float('nan'), 'a': (1, 2.5)})
    with open(path) as f:
        assert f.read() == ('{\n  "a": [\n    1,\n    2.5\n  ],\n'
                            '  "b": null\n}\n')
    assert os.listdir(str(tmp_path / 'new')) == ['summary.json']


def test_the_record_layout_keeps_the_committed_records_byte_identical(
        tmp_path):
    """A protocol record rewritten is the file committed under
    docs/results/ (its keys in their order, indent 1)."""
    records = [p for p in RECORDS if os.sep + 'mini' in p]
    if not records:
        pytest.skip('no committed protocol records in this checkout')
    for path in records[:50]:
        with open(path) as f:
            text = f.read()
        out = str(tmp_path / 'record.json')
        strict_json.write_json(out, json.loads(text), **strict_json.RECORD)
        with open(out) as f:
            assert f.read() == text, path

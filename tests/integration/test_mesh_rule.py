"""The empty-mesh rule of docs/libp2p.md, as printed there, run by promtool over series shaped as a node exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from p2p_telemetry.catalogue import CATALOGUE
from realstack import binary

DOC = Path(__file__).resolve().parents[2] / "docs" / "libp2p.md"


def _documented_rule() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    rules = [rule for block in blocks for rule in yaml.safe_load(block) if rule.get("alert") == "P2PPubsubMeshEmpty"]
    assert len(rules) == 1
    return rules[0]


def test_the_rule_reads_series_the_catalogue_exports():
    series_part = re.sub(r"\b(by|on) \([^)]*\)", "", _documented_rule()["expr"])  # label lists out
    names = set(re.findall(r"\bp2p_\w+", series_part))
    exported = {spec.prometheus for spec in CATALOGUE}
    assert names == {"p2p_pubsub_mesh_peers", "p2p_pubsub_topic_peers"} and names <= exported


def test_fires_only_for_an_empty_mesh_while_peers_share_the_topic(tmp_path):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "libp2p", "rules": [_documented_rule()]}]}))
    # (instance, topic): mesh peers and topic peers, one value a minute for 10 minutes
    series = {
        ("stuck", "blocks"): ("0x10", "3x10"),  # peers share the topic, none in the mesh: fires after 2 minutes
        ("alone", "blocks"): ("0x10", "0x10"),  # nobody else on the topic: nothing to fix
        ("forming", "blocks"): ("0 0 3x8", "2x10"),  # the mesh forms within 2 minutes
        ("full", "blocks"): ("3x10", "3x10"),
    }
    input_series = [{"series": f'{metric}{{instance="{instance}",p2p_pubsub_topic="{topic}"}}', "values": values}
                    for (instance, topic), pair in series.items()
                    for metric, values in zip(("p2p_pubsub_mesh_peers", "p2p_pubsub_topic_peers"), pair)]
    stuck = {"exp_labels": {"alertname": "P2PPubsubMeshEmpty", "severity": "warning", "instance": "stuck",
                            "p2p_pubsub_topic": "blocks"},
             "exp_annotations": {"summary": "stuck: no gossipsub mesh peer on blocks for 2 minutes"}}
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "P2PPubsubMeshEmpty", "exp_alerts": []},  # pending, not firing
            {"eval_time": "3m", "alertname": "P2PPubsubMeshEmpty", "exp_alerts": [stuck]},
            {"eval_time": "9m", "alertname": "P2PPubsubMeshEmpty", "exp_alerts": [stuck]},
        ],
    }]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([binary("promtool"), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

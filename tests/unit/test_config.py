"""edge.config: validation with key paths, unknown keys rejected, overrides."""

import pytest

from edge.config import ConfigError, load_config
from edge.config.schema import mqtt_password

ROOT_CONFIG = __import__("conftest").ROOT / "config.yaml"


def test_repo_config_example_is_valid():
    cfg = load_config(ROOT_CONFIG)
    assert cfg.sources and cfg.mqtt.topic_prefix == "edge-fer" and cfg.metrics.port == 9108


def test_every_error_is_listed_with_its_key_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("device_id: edge-1\nsources:\n  - name: cam0\n    urii: /dev/video0\n"
                 "mqtt: {port: 99999}\ndetect_every: 0\nbogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    for path in ("sources.0.uri", "sources.0.urii", "mqtt.port", "detect_every", "bogus"):
        assert path in msg


def test_duplicate_source_names_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sources: [{name: a, uri: 0}, {name: a, uri: 1}]\n")
    with pytest.raises(ConfigError, match="unique"):
        load_config(p)
    p.write_text("sources: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_cli_overrides_merge_over_the_file():
    cfg = load_config(ROOT_CONFIG, {"detect_every": 5, "classifier": {"num_threads": 2}})
    assert cfg.detect_every == 5 and cfg.classifier.num_threads == 2
    assert cfg.classifier.align is True and cfg.tracker.min_hits == 2  # untouched keys keep the file values


def test_password_sources_in_order(tmp_path, monkeypatch):
    cfg = load_config(None).mqtt
    monkeypatch.setenv("EDGE_FER_MQTT_PASSWORD", "from-env")
    assert mqtt_password(cfg) == "from-env"
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    assert mqtt_password(cfg.model_copy(update={"password_file": str(f)})) == "from-file"


def test_classifier_settings_reach_the_classifier():
    from edge.pipeline.factory import build_classifier

    cfg = load_config(ROOT_CONFIG, {"classifier": {"tta_flip": True, "margin": 0.15}})
    clf = build_classifier(cfg)
    assert clf.tta_flip and clf.margin == 0.15 and clf.max_batch == cfg.detector.max_faces
    assert not build_classifier(load_config(ROOT_CONFIG)).tta_flip

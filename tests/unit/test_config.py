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


def test_flip_margin_setting_reaches_the_classifier():
    """classifier.flip_margin: null = the model's sidecar (ferplus 0.1), a number overrides it, bounds enforced."""
    from edge.pipeline.factory import build_classifier

    def clf(**section):
        return build_classifier(load_config(ROOT_CONFIG, {"classifier": {"model": "ferplus", **section}}))

    assert clf().flip_margin == 0.1
    assert clf(flip_margin=0).flip_margin == 0 and clf(flip_margin=0.3).flip_margin == 0.3
    assert clf(tta_flip=True).flip_margin == float("inf")
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="flip_margin"):
            load_config(ROOT_CONFIG, {"classifier": {"flip_margin": bad}})


def _problems(tmp_path, text: str, overrides: dict | None = None) -> str:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, overrides)
    return str(err.value)


@pytest.mark.parametrize("text, path", [
    ("mqtt: {keepalive_s: 70000}", "mqtt.keepalive_s"),
    ("mqtt: {keepalive_s: 4}", "mqtt.keepalive_s"),
    ("mqtt: {port: 0}", "mqtt.port"),
    ("mqtt: {port: 65536}", "mqtt.port"),
    ("metrics: {port: 65536}", "metrics.port"),
    ("mqtt: {state_interval_s: .inf}", "mqtt.state_interval_s"),
    ("mqtt: {state_interval_s: .nan}", "mqtt.state_interval_s"),
    ("mqtt: {reconnect_max_s: .inf}", "mqtt.reconnect_max_s"),
    ("mqtt: {command_max_bytes: 63}", "mqtt.command_max_bytes"),
    ("mqtt: {command_max_bytes: 1048577}", "mqtt.command_max_bytes"),
    ("reconnect_max_s: .inf", "reconnect_max_s"),
    ("reconnect_max_s: 3601", "reconnect_max_s"),
    ("reconnect_initial_s: 1e300", "reconnect_initial_s"),
    ("reconnect_initial_s: 0", "reconnect_initial_s"),
    ("reconnect_initial_s: 20\nreconnect_max_s: 10", "reconnect_initial_s"),
    ("read_timeout_s: .inf", "read_timeout_s"),
    ("read_timeout_s: 'inf'", "read_timeout_s"),
    ("read_timeout_s: 7200", "read_timeout_s"),
    ("sources: [{name: a, uri: 0, fps: .inf}]", "sources.0.fps"),
    ("smoothing: {tau_s: .inf}", "smoothing.tau_s"),  # a section defined in another file
    ("classifier: 5", "classifier"),
])
def test_numbers_are_bounded_and_finite_with_key_path(tmp_path, text, path):
    msg = _problems(tmp_path, text + "\n")
    assert msg.splitlines()[0].startswith(f"{path}: "), msg


def test_bounds_accept_the_edges(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("mqtt: {keepalive_s: 65535, port: 65535, command_max_bytes: 64}\nmetrics: {port: 0}\n"
                 "reconnect_initial_s: 3600\nreconnect_max_s: 3600\nread_timeout_s: 3600\n")
    cfg = load_config(p)
    assert cfg.mqtt.keepalive_s == 65535 and cfg.metrics.port == 0 and cfg.reconnect_max_s == 3600


def test_a_section_that_is_not_a_mapping_is_a_key_path_error_even_with_cli_overrides(tmp_path):
    msg = _problems(tmp_path, "classifier: 5\noutput: [1]\n",
                    {"classifier": {"num_threads": 2}, "output": {"dir": "x"}})
    assert "classifier: Input should be a valid dictionary" in msg and "output: " in msg


def test_duplicate_yaml_keys_are_refused_with_key_path_and_lines(tmp_path):
    msg = _problems(tmp_path, "mqtt:\n  port: 1883\n  host: a\n  port: 1884\nlog_level: INFO\nlog_level: DEBUG\n"
                              "sources:\n  - {name: a, uri: 0, name: b}\n")
    lines = msg.splitlines()
    assert "mqtt.port: duplicate key on line 4 (first on line 2); each key may appear once" in lines
    assert any(line.startswith("log_level: duplicate key on line 6 (first on line 5)") for line in lines)
    assert any(line.startswith("sources.0.name: duplicate key on line 8") for line in lines)


def test_yaml_merge_keys_and_aliases_still_work(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("smoothing: &s {tau_s: 0.5, min_hold_s: 0.1}\n"
                 "sources:\n  - &cam {name: a, uri: 0}\n  - {<<: *cam, name: b}\n")
    cfg = load_config(p)
    assert [s.name for s in cfg.sources] == ["a", "b"] and cfg.smoothing.tau_s == 0.5


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    t0 = time.monotonic()
    msg = _problems(tmp_path, "\n".join(lines) + "\n")
    assert time.monotonic() - t0 < 2.0 and "a0: Extra inputs are not permitted" in msg


def test_deeply_nested_or_binary_yaml_is_one_line(tmp_path):
    assert _problems(tmp_path, "a: " + "[" * 5000 + "\n").endswith("not valid YAML (nested too deeply)")
    p = tmp_path / "c.yaml"
    p.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(p)


def test_bad_yaml_names_its_line(tmp_path):
    msg = _problems(tmp_path, "mqtt:\n\tport: 1\n")
    assert "not valid YAML" in msg and "at line 2, column 1" in msg and len(msg.splitlines()) == 1


def test_daemon_problems_need_a_source(tmp_path):
    from edge.config import daemon_problems

    assert daemon_problems(load_config(None)) == ["sources: at least one source is needed to run the daemon"]
    assert daemon_problems(load_config(ROOT_CONFIG)) == []


def test_command_token_settings(tmp_path):
    from edge.config import command_token

    cfg = load_config(None).mqtt
    assert command_token(cfg) is None and cfg.command_max_bytes == 4096
    assert command_token(cfg.model_copy(update={"command_token": "inline-token"})) == "inline-token"
    f = tmp_path / "token"
    f.write_text("  file-token  \nsecond line\n")
    assert command_token(cfg.model_copy(update={"command_token_file": str(f)})) == "file-token"
    with pytest.raises(ConfigError, match="mqtt.command_token_file: cannot read"):
        command_token(cfg.model_copy(update={"command_token_file": str(tmp_path / "missing")}))
    f.write_text("\n")
    with pytest.raises(ConfigError, match="mqtt.command_token_file"):
        command_token(cfg.model_copy(update={"command_token_file": str(f)}))
    msg = _problems(tmp_path, f"mqtt: {{command_token: abc, command_token_file: {f}}}\n")
    assert msg.startswith("mqtt.command_token: ")

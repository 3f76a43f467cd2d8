"""``edge-fer --check-config`` finds what the daemon would fail on at start, each with its key path."""

import socket

import pytest

from conftest import run_edge_fer
from edge import exit_codes as codes


def _config(tmp_path, body: str):
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return path


def _good(tmp_path, d19, port: int) -> str:
    return (f"sources: [{{name: cam0, uri: {d19}}}]\nstate_dir: {tmp_path / 'state'}\n"
            f"metrics: {{host: 127.0.0.1, port: {port}}}\n")


@pytest.mark.integration
def test_a_good_config_passes_and_creates_the_state_dir(tmp_path, d19):
    from conftest import free_port

    res = run_edge_fer("--config", str(_config(tmp_path, _good(tmp_path, d19, free_port()))), "--check-config")
    assert res.returncode == codes.OK, res.stderr
    assert "config OK" in res.stdout and (tmp_path / "state").is_dir()


@pytest.mark.integration
def test_missing_model_is_exit_3_with_its_key(tmp_path, d19):
    from conftest import free_port

    body = _good(tmp_path, d19, free_port()) + f"classifier: {{model: {tmp_path / 'none.tflite'}}}\n"
    res = run_edge_fer("--config", str(_config(tmp_path, body)), "--check-config")
    assert res.returncode == codes.MODEL and "Traceback" not in res.stderr
    assert "config: classifier.model: model file not found" in res.stderr


@pytest.mark.integration
def test_every_problem_listed_with_its_key_path(tmp_path, d19):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        body = (f"sources: [{{name: cam0, uri: {d19}}}, {{name: cam1, uri: {tmp_path / 'gone.mp4'}}}]\n"
                f"state_dir: /proc/edge-fer-state\nmetrics: {{host: 127.0.0.1, port: {port}}}\n"
                "classifier: {model: nosuchmodel}\n")
        res = run_edge_fer("--config", str(_config(tmp_path, body)), "--check-config")
    assert res.returncode == codes.USAGE and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    for key in ("classifier.model: unknown model", "sources.1.uri: source cam1: no such file", "state_dir: ",
                f"metrics.port: cannot bind 127.0.0.1:{port}"):
        assert sum(key in line for line in lines) == 1, (key, lines)
    assert not any("sources.0" in line for line in lines)


@pytest.mark.integration
def test_daemon_without_source_fails_the_check(tmp_path):
    res = run_edge_fer("--config", str(_config(tmp_path, f"state_dir: {tmp_path}\n")), "--check-config")
    assert res.returncode == codes.USAGE and "config: sources: at least one source" in res.stderr

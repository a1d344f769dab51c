"""The exposition text (pure parts of corral.monitor.prometheus), read back by Prometheus' parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral.monitor.prometheus import parse_head, render


def test_label_values_are_escaped_and_read_back_exactly() -> None:
    odd = 'a "quoted" \\ back\nslash'
    text = render({"corral_filesystem_used_ratio": [({"mount": odd}, 0.25)],
                   "corral_instance_restarts_total": [({"app": "x", "instance": "0", "namespace": "n"}, 3)]})
    found = {f.name: f for f in text_string_to_metric_families(text)}
    assert found["corral_filesystem_used_ratio"].samples[0].labels == {"mount": odd}
    assert found["corral_filesystem_used_ratio"].samples[0].value == 0.25
    assert found["corral_instance_restarts"].type == "counter"
    assert found["corral_instance_restarts"].samples[0].name == "corral_instance_restarts_total"
    assert text.endswith("\n") and "# HELP corral_instance_restarts_total " in text


def test_families_without_samples_are_left_out() -> None:
    assert render({"corral_instance_up": []}) == "\n"


def test_request_heads() -> None:
    method, path, headers = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n")
    assert (method, path, headers) == ("GET", "/metrics?x=1", {"authorization": "Bearer t"})
    for bad in (b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", b"\x00\r\n\r\n",
                b"GET  /metrics HTTP/1.1\r\n\r\n"):
        with pytest.raises(ValueError):
            parse_head(bad)

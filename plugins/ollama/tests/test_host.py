"""Where the server is: ``OLLAMA_HOST`` in every form Ollama's own ``envconfig.Host`` reads,
the client-side mapping of "every interface" onto loopback (``envconfig.ConnectableHost``),
and the settings that carry it (`OllamaServerConfig`, `OllamaBackendConfig`).
"""

from __future__ import annotations

import pytest

from tachikoma_backend_ollama._host import DEFAULT_BASE_URL, OllamaServerConfig, parse_host
from tachikoma_backend_ollama._plugin import OllamaBackendConfig
from tachikoma_backends_core import ConfigurationError

# (OLLAMA_HOST, base URL). The first block is envconfig/config_test.go's TestHost, row
# for row, with ConnectableHost's mapping applied (an empty host, 0.0.0.0 and :: bind
# every interface; a client reaches them on loopback).
GO_TABLE: list[tuple[str, str]] = [
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":1234", "http://127.0.0.1:1234"),
    ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    ("example.com", "http://example.com:11434"),
    ("example.com:1234", "http://example.com:1234"),
    (":0", "http://127.0.0.1:0"),
    (":66000", "http://127.0.0.1:11434"),
    (":-1", "http://127.0.0.1:11434"),
    ("[::1]", "http://[::1]:11434"),
    ("[::]", "http://[::1]:11434"),
    ("::1", "http://[::1]:11434"),
    ("[::1]:1337", "http://[::1]:1337"),
    (' "1.2.3.4" ', "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://example.com/ollama", "https://example.com:443/ollama"),
    ("ollama.com", "https://ollama.com:443"),
]
# TestConnectableHost, then the Python client's docstring cases and more of the same rules.
MORE: list[tuple[str, str]] = [
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:1234", "http://127.0.0.1:1234"),
    ("[::]:1234", "http://[::1]:1234"),
    ("::", "http://[::1]:11434"),
    ("[0:0:0:0:0:0:0:0]:1234", "http://[::1]:1234"),  # "::" spelled out: still unspecified
    ("http://0.0.0.0:11434", "http://127.0.0.1:11434"),
    ("localhost", "http://localhost:11434"),
    ("gpu-box:11500", "http://gpu-box:11500"),
    ("example.com/", "http://example.com:11434"),
    ("example.com:56789/path/", "http://example.com:56789/path"),
    ("1.2.3.4:1234/", "http://1.2.3.4:1234"),
    ("http://localhost:11434/", "http://localhost:11434"),
    ("https://example.com/ollama/", "https://example.com:443/ollama"),
    ("https://example.com:8443/a/b/", "https://example.com:8443/a/b"),
    ("[0001:002:003:0004::1]:56789/path", "http://[0001:002:003:0004::1]:56789/path"),
    ("::1:1234", "http://[::1:1234]:11434"),  # not host:port: a bare IPv6 address, as in Go
    ("example.com:abc", "http://example.com:11434"),
    ("example.com:", "http://example.com:11434"),
    ("example.com:99999", "http://example.com:11434"),
    ("[::1]:", "http://[::1]:11434"),
    ("http://", "http://127.0.0.1:80"),
    ("http://:8080", "http://127.0.0.1:8080"),
    ("https://[::1]", "https://[::1]:443"),
    ("  gpu-box:11500\n", "http://gpu-box:11500"),
]


@pytest.mark.parametrize(("value", "expected"), GO_TABLE + MORE, ids=repr)
def test_parse_host(value: str, expected: str) -> None:
    assert parse_host(value) == expected


def test_nothing_is_the_default() -> None:
    assert parse_host(None) == DEFAULT_BASE_URL == "http://127.0.0.1:11434"


@pytest.mark.parametrize("value", ["ftp://x", "unix:///var/run/ollama.sock", "ws://host:1"])
def test_a_scheme_other_than_http_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        parse_host(value)


# --- OllamaServerConfig -----------------------------------------------------------------


@pytest.fixture
def no_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


@pytest.mark.usefixtures("no_ollama_host")
@pytest.mark.parametrize(("value", "expected"), GO_TABLE + MORE, ids=repr)
def test_server_config_host_takes_every_form(value: str, expected: str) -> None:
    assert OllamaServerConfig(host=value).base_url == expected


@pytest.mark.usefixtures("no_ollama_host")
@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, 11500, "http://127.0.0.1:11500"),
        ("gpu-box", 11500, "http://gpu-box:11500"),
        ("gpu-box:1234", 11500, "http://gpu-box:11500"),
        ("http://gpu-box", 8080, "http://gpu-box:8080"),
        ("https://example.com/ollama", 8443, "https://example.com:8443/ollama"),
        ("[::1]:1337", 2000, "http://[::1]:2000"),
        ("[::]", 2000, "http://[::1]:2000"),
        ("0.0.0.0:1234", 1, "http://127.0.0.1:1"),
        ("gpu-box", 65535, "http://gpu-box:65535"),
    ],
)
def test_server_config_port_overrides_the_hosts(host: str | None, port: int, expected: str) -> None:
    assert OllamaServerConfig(host=host, port=port).base_url == expected


@pytest.mark.parametrize(
    ("environment", "expected", "with_port_9"),
    [
        (None, "http://127.0.0.1:11434", "http://127.0.0.1:9"),
        ("", "http://127.0.0.1:11434", "http://127.0.0.1:9"),
        ("gpu-box:11500", "http://gpu-box:11500", "http://gpu-box:9"),
        ("0.0.0.0", "http://127.0.0.1:11434", "http://127.0.0.1:9"),
        (
            "https://example.com/ollama/",
            "https://example.com:443/ollama",
            "https://example.com:9/ollama",
        ),
    ],
)
def test_server_config_reads_ollama_host_when_host_is_none(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, expected: str, with_port_9: str
) -> None:
    if environment is None:
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_HOST", environment)
    assert OllamaServerConfig().base_url == expected
    assert OllamaServerConfig(port=9).base_url == with_port_9


def test_server_config_host_given_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "elsewhere:1")
    assert OllamaServerConfig(host="gpu-box").base_url == "http://gpu-box:11434"
    assert OllamaServerConfig(host="").base_url == DEFAULT_BASE_URL, "'' is a host, not unset"


@pytest.mark.usefixtures("no_ollama_host")
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"port": 0}, "port"),
        ({"port": -1}, "port"),
        ({"port": 65536}, "port"),
        ({"start_timeout": 0}, "start_timeout"),
        ({"start_timeout": -5.0}, "start_timeout"),
        ({"host": "ftp://gpu-box"}, "host"),
        ({"host": "unix:///var/run/ollama.sock"}, "host"),
    ],
)
def test_server_config_refuses_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        OllamaServerConfig(**fields)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert field in raised.value.message


def test_server_config_refuses_a_bad_ollama_host_when_it_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "ftp://gpu-box")
    with pytest.raises(ConfigurationError) as raised:
        OllamaServerConfig()
    assert raised.value.field == "host"


def test_server_config_defaults(no_ollama_host: None) -> None:
    config = OllamaServerConfig()
    assert (config.host, config.port, config.auto_start) == (None, None, False)
    assert (config.start_timeout, config.binary) == (30.0, "ollama")
    assert config.base_url == DEFAULT_BASE_URL


# --- OllamaBackendConfig ----------------------------------------------------------------


@pytest.mark.usefixtures("no_ollama_host")
@pytest.mark.parametrize(("value", "expected"), GO_TABLE + MORE, ids=repr)
def test_backend_config_base_url_takes_every_form(value: str, expected: str) -> None:
    assert OllamaBackendConfig(base_url=value).base_url == expected


@pytest.mark.parametrize(("value", "expected"), GO_TABLE + MORE, ids=repr)
def test_backend_config_reads_ollama_host(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert OllamaBackendConfig().base_url == expected
    assert OllamaBackendConfig(base_url="gpu-box").base_url == "http://gpu-box:11434"


def test_backend_config_default_base_url(no_ollama_host: None) -> None:
    assert OllamaBackendConfig().base_url == DEFAULT_BASE_URL
    assert OllamaBackendConfig.environment_variables()["base_url"] == "OLLAMA_HOST"


@pytest.mark.usefixtures("no_ollama_host")
@pytest.mark.parametrize("value", ["ftp://gpu-box", "unix:///var/run/ollama.sock"])
def test_backend_config_refuses_a_non_http_base_url(value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        OllamaBackendConfig(base_url=value)
    assert raised.value.field == "base_url"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (300, 300),
        (0, 0),
        (-1, -1),
        (2.5, 2.5),
        ("10m", "10m"),
        ("1h30m", "1h30m"),
        ("-1m", "-1m"),
        ("1.5h", "1.5h"),
        ("500ms", "500ms"),
        ("2h45m30.5s", "2h45m30.5s"),
        ("300", 300.0),
        ("0", 0.0),
        ("-1", -1.0),
        ("2.5", 2.5),
        (None, None),
    ],
)
def test_keep_alive_takes_seconds_or_a_duration(
    value: float | str | None, expected: float | str | None
) -> None:
    kept = OllamaBackendConfig(keep_alive=value).keep_alive
    assert kept == expected
    assert type(kept) is type(expected) or isinstance(expected, (int, float))


def test_keep_alive_a_number_in_a_string_becomes_a_number() -> None:
    # Ollama reads a JSON string as a Go duration, and "300" has no unit: a 400.
    kept = OllamaBackendConfig(keep_alive="300").keep_alive
    assert isinstance(kept, float)
    assert kept == 300.0


def test_keep_alive_around_spaces_are_not_sent() -> None:
    # time.ParseDuration(" 10m ") fails ("invalid duration"): the server would answer 400.
    assert OllamaBackendConfig(keep_alive=" 10m ").keep_alive == "10m"


@pytest.mark.parametrize("value", ["soon", "10 minutes", "m", "1h30", "", "nan", "inf"])
def test_keep_alive_refuses_what_ollama_cannot_read_naming_the_field(value: str) -> None:
    # "nan" and "inf" are numbers to float() but not to JSON: the body would not parse.
    with pytest.raises(ConfigurationError) as raised:
        OllamaBackendConfig(keep_alive=value)
    assert raised.value.field == "keep_alive"
    assert "keep_alive" in raised.value.message

"""An nginx server in front of the apps' ``listen`` addresses (an ``http {}`` include).

corral owns each app's listening socket and keeps it open through reloads, so nginx never sees
a refused connection; an instance that shuts down can still reset a connection it accepted (its
server's graceful exit), so the upstream lists the same address twice (the second as ``backup``)
and ``proxy_next_upstream error timeout`` retries an idempotent request once more: on the same
socket, another instance answers.  Upstream keep-alive needs ``proxy_http_version 1.1`` and an
empty ``Connection`` header.  Plus gzip, long-lived caching of a static folder, the ACME
challenge location and a TLS server block ready for certbot.
"""

from __future__ import annotations

from corral.config.spec import AppSpec
from corral.export import Export, Options

GZIP_TYPES = ("text/plain text/css text/xml application/javascript application/json application/xml "
              "image/svg+xml application/rss+xml font/woff2")


def _server_address(address: str) -> str | None:
    if address.startswith("unix:"):
        return address
    if address.startswith("tcp://"):
        host, _, port = address[len("tcp://"):].rpartition(":")
        if port == "0":
            return None
        host = "127.0.0.1" if host in ("0.0.0.0", "", "*") else host
        host = "[::1]" if host in ("[::]", "::") else host
        return f"{host}:{port}"
    return None


def _upstream(spec: AppSpec, address: str) -> list[str]:
    return [
        f"upstream corral_{spec.name.replace('-', '_').replace('.', '_')} {{",
        f"    server {address} max_fails=0;",
        "    # the same shared socket again, three times: a retried request (a connection an exiting",
        "    # instance reset) reaches another instance of the app; one entry is one try, and under",
        "    # load a retry can land on a second exiting instance (seen: 1 request in 5,000)",
        *(f"    server {address} max_fails=0 backup;" for _ in range(3)),
        "    keepalive 32;",
        "}",
        "",
    ]


def _location(path: str, upstream: str, strip: bool) -> list[str]:
    return [
        f"    location {path} {{",
        f"        proxy_pass http://{upstream}{'/' if strip else ''};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_next_upstream error timeout;  # idempotent requests only (nginx's default)",
        "        proxy_next_upstream_tries 4;",
        "    }",
    ]


def _common(options: Options) -> list[str]:
    lines = [
        "    gzip on;",
        "    gzip_vary on;",
        "    gzip_proxied any;",
        "    gzip_comp_level 5;",
        "    gzip_min_length 1024;",
        f"    gzip_types {GZIP_TYPES};",
        "",
        "    location /.well-known/acme-challenge/ {",
        "        root /var/www/certbot;  # certbot certonly --webroot -w /var/www/certbot",
        "    }",
    ]
    if options.static:
        lines += [
            "    location /static/ {",
            f"        alias {options.static.rstrip('/')}/;",
            '        add_header Cache-Control "public, max-age=31536000, immutable";  # hashed names',
            "        access_log off;",
            "    }",
        ]
    return lines


def export(specs: list[AppSpec], options: Options) -> Export:
    out = Export()
    upstreams: list[str] = []
    locations: list[str] = []
    for spec in specs:
        addresses = [a for a in (_server_address(x) for x in spec.listen) if a]
        if not addresses:
            if spec.listen:
                out.cannot(spec, "listen on port 0 (a port chosen at start): nginx needs a fixed port")
            continue
        name = f"corral_{spec.name.replace('-', '_').replace('.', '_')}"
        upstreams += _upstream(spec, addresses[0])
        first = not locations
        locations += _location("/" if first else f"/{spec.name}/", name, strip=not first)
        if not first:
            out.cannot(spec, f"one server name for every app: served under /{spec.name}/")
        if len(addresses) > 1:
            out.cannot(spec, f"listen {', '.join(spec.listen[1:])}: only the first address is proxied")
    if not locations:
        out.cannot(None, "no app has a listen address with a fixed port: nothing to proxy")
    server = ["server {", f"    listen {options.listen};", f"    server_name {options.server_name};",
              *_common(options), *locations, "}", ""]
    tls = [
        "# TLS, once certbot has a certificate (certbot certonly --webroot -w /var/www/certbot",
        f"# -d {options.server_name}): uncomment, and redirect the plain server to it.",
        "# server {",
        "#     listen 443 ssl http2;",
        f"#     server_name {options.server_name};",
        f"#     ssl_certificate /etc/letsencrypt/live/{options.server_name}/fullchain.pem;",
        f"#     ssl_certificate_key /etc/letsencrypt/live/{options.server_name}/privkey.pem;",
        "#     include /etc/letsencrypt/options-ssl-nginx.conf;",
        "#     ssl_dhparam /etc/letsencrypt/ssl-dhparams.pem;",
        "#     (the same gzip and location blocks as above)",
        "# }",
        "",
    ]
    head = ["# Written by `corral export nginx`: include it in nginx's http {} block", ""]
    out.files["nginx.conf"] = "\n".join(head + upstreams + server + tls)
    return out

"""``guardrail serve`` and ``guardrail keys add|list|revoke``: parse, call, print."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from guardrail.errors import GuardrailError
from guardrail.server.config import CONFIG_ENV, ConfigError, ServeConfig, load_config


def add_server_subcommands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the HTTP service (see examples/serve.toml)")
    serve.add_argument("--config", required=True, help="TOML configuration file")
    serve.add_argument("--bind", help="HOST:PORT to listen on (port 0: any free port)")
    serve.add_argument("--workers", type=int, help="worker processes (default: from the file)")
    serve.set_defaults(func=_cmd_serve)

    keys = commands.add_parser("keys", help="manage the service's API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    add = actions.add_parser("add", help="create a key; prints it once, as the last line")
    add.add_argument("--config", required=True)
    add.add_argument("--role", required=True, choices=("teller", "supervisor", "auditor", "admin"))
    add.add_argument("--name", required=True, help="the teller/supervisor id the key acts as")
    add.set_defaults(func=_cmd_keys_add)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--config", required=True)
    listing.set_defaults(func=_cmd_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("--config", required=True)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_cmd_keys_revoke)


def _config(args: argparse.Namespace) -> ServeConfig:
    try:
        return load_config(args.config)
    except ConfigError as error:
        print(f"guardrail: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _fail(error: GuardrailError | OSError) -> int:
    print(f"guardrail: {error}", file=sys.stderr)
    return 2


def _cmd_keys_add(args: argparse.Namespace) -> int:
    from guardrail.server.keys import Role
    from guardrail.server.stores import open_keys

    config = _config(args)
    try:
        store = open_keys(config.stores.keys)
        key = store.add(args.name, Role(args.role))
    except GuardrailError as error:
        return _fail(error)
    print(f"created {args.role} key {key.split('_')[1]} for {args.name}; it is shown only once:")
    print(key)
    return 0


def _cmd_keys_list(args: argparse.Namespace) -> int:
    from guardrail.server.stores import open_keys

    config = _config(args)
    try:
        infos = open_keys(config.stores.keys).list()
    except GuardrailError as error:
        return _fail(error)
    print(f"{'key id':<14}{'role':<12}{'name':<20}{'created':<27}revoked")
    for info in infos:
        print(
            f"{info.key_id:<14}{info.role.value:<12}{info.name:<20}{info.created_at:<27}"
            f"{info.revoked_at or '-'}"
        )
    return 0


def _cmd_keys_revoke(args: argparse.Namespace) -> int:
    from guardrail.server.stores import open_keys

    config = _config(args)
    try:
        info = open_keys(config.stores.keys).revoke(args.key_id)
    except GuardrailError as error:
        return _fail(error)
    print(f"revoked key {info.key_id} ({info.role.value} {info.name}) at {info.revoked_at}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from guardrail.lang.errors import PackError
    from guardrail.lang.loader import load_pack
    from guardrail.server import stores

    config = _config(args)
    updates: dict[str, object] = {}
    if args.bind:
        updates["bind"] = args.bind
    if args.workers:
        updates["workers"] = args.workers
    try:
        if updates:
            serve = config.serve.model_validate({**config.serve.model_dump(), **updates})
            config = config.model_copy(update={"serve": serve})
        stores.check_sharing(config)
        stores.audit_keys(config)
        load_pack(config.pack_path)
    except PackError as error:
        print(error, file=sys.stderr)
        return 2
    except (GuardrailError, ValueError) as error:
        return _fail(error if isinstance(error, GuardrailError) else ConfigError(str(error)))
    host, port = config.bind_address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        return _fail(OSError(f"cannot listen on {host}:{port}: {error.strerror}"))
    sock.listen(2048)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    # Workers load the same file; the --bind/--workers overrides reach them through the env.
    os.environ[CONFIG_ENV] = str(os.path.abspath(args.config))
    os.environ["GUARDRAIL_SERVE_SERVE_WORKERS"] = str(config.serve.workers)
    print(
        f"guardrail serving http://{host}:{bound} with {config.serve.workers} worker(s), "
        f"pack {config.pack_path}",
        flush=True,
    )
    uv_config = uvicorn.Config(
        "guardrail.server.app:app_from_env",
        factory=True,
        workers=config.serve.workers,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=10,
    )
    if config.serve.workers > 1:
        Multiprocess(uv_config, sockets=[sock]).run()
    else:
        uvicorn.Server(uv_config).run(sockets=[sock])
    return 0

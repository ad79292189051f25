"""``tuneloop keys``: create (the key is printed once), list and revoke API keys; mint JWTs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.app.keys import Role, create_key, list_keys, revoke_key
from tuneloop.cli.common import DEFAULT, TenantOption, console, engine, err_console, settings
from tuneloop.config import ApiSettings
from tuneloop.errors import ConfigurationError, InvalidInputError

app = typer.Typer(help="API keys: create, list, revoke; mint JWTs.", no_args_is_help=True)

_TTL_PART = re.compile(r"(\d+)([smhd])")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_TENANT_LENGTH = 64  # what the API accepts in a token's ``tenant`` claim


@app.command("create")
def create_command(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")],
    tenant: TenantOption = DEFAULT,
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
) -> None:
    """Create a key; it is printed once, only its hash is stored."""
    issued = create_key(engine(), tenant, role=role, name=name)
    console.print(
        f"created key [bold]{issued.record.id}[/] ({role.value}, tenant {tenant}). "
        "Store it now, it is not shown again:",
        highlight=False,
    )
    typer.echo(issued.plaintext)


@app.command("list")
def list_command(tenant: TenantOption = DEFAULT) -> None:
    """List a tenant's keys (ids and roles, never the keys)."""
    table = Table("id", "role", "name", "created", "revoked")
    for row in list_keys(engine(), tenant):
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M") if row.revoked_at else ""
        table.add_row(
            row.id, row.role, row.name or "", row.created_at.strftime("%Y-%m-%d %H:%M"), revoked
        )
    console.print(table)


@app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (the 12 characters after tl_).")],
    tenant: TenantOption = DEFAULT,
) -> None:
    """Revoke a key; requests with it are refused from now on."""
    record = revoke_key(engine(), tenant, key_id)
    console.print(f"revoked key [bold]{record.id}[/] of tenant {tenant}", highlight=False)


@app.command("mint-jwt")
def mint_jwt_command(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")],
    subject: Annotated[str, typer.Option(help="Who the token is for (its `sub` claim).")],
    tenant: TenantOption = DEFAULT,
    ttl: Annotated[
        str, typer.Option(help="Lifetime: 30m, 1h, 7d, 1h30m (units s, m, h, d).")
    ] = "1h",
) -> None:
    """Mint an HS256 JWT the API accepts (signed with api.jwt_secret); prints only the token."""
    lifetime = parse_ttl(ttl)
    issued_at = datetime.now(UTC)
    token = mint_jwt(
        settings().api, tenant=tenant, role=role, subject=subject, ttl=lifetime, now=issued_at
    )
    expires = (issued_at + lifetime).strftime("%Y-%m-%d %H:%M:%S UTC")
    err_console.print(
        f"JWT for {subject} ({role.value}, tenant {tenant}), expires {expires}",
        highlight=False,
        markup=False,  # the subject is the caller's text, not Rich markup
    )
    typer.echo(token)  # alone on stdout, so TOKEN=$(tuneloop keys mint-jwt ...) works


def mint_jwt(
    api: ApiSettings,
    *,
    tenant: str,
    role: Role,
    subject: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> str:
    """A token with the claims ``tuneloop.api.auth`` checks: sub, tenant, role, iat, exp, and
    aud/iss when the settings require them."""
    if api.jwt_secret is None:
        raise ConfigurationError(
            "no JWT secret configured: set api.jwt_secret (TUNELOOP_API__JWT_SECRET, "
            "at least 32 characters); the API refuses JWTs without one"
        )
    if not 0 < len(tenant) <= MAX_TENANT_LENGTH:
        raise InvalidInputError(f"tenant must be 1 to {MAX_TENANT_LENGTH} characters")
    if not subject.strip():
        raise InvalidInputError("subject must not be empty")
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": subject,
        "tenant": tenant,
        "role": role.value,
        "iat": issued,
        "exp": issued + ttl,
    }
    if api.jwt_audience is not None:
        claims["aud"] = api.jwt_audience
    if api.jwt_issuer is not None:
        claims["iss"] = api.jwt_issuer
    import jwt  # here, not at import: PyJWT loads cryptography, ~50 ms of every CLI start

    return jwt.encode(claims, api.jwt_secret.get_secret_value(), algorithm="HS256")


def parse_ttl(text: str) -> timedelta:
    """``30m``, ``1h``, ``7d``, ``1h30m`` → a positive timedelta; anything else is an error."""
    cleaned = text.strip().lower()
    parts = _TTL_PART.findall(cleaned)
    if not parts or "".join(number + unit for number, unit in parts) != cleaned:
        raise InvalidInputError(
            f"--ttl {text!r} is not a duration like 30m, 1h, 7d or 1h30m (units s, m, h, d)"
        )
    ttl = sum((timedelta(**{_TTL_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    if ttl <= timedelta():
        raise InvalidInputError("--ttl must be longer than 0 seconds")
    return ttl

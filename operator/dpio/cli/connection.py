"""Where the CLI finds vCenter and Kubernetes: flags, then the environment, then the operator's
own Secret, so `dpio inventory` works unchanged after `make sandbox` and inside a cluster.

The variable names are the ones `.sandbox/env` exports (`dpio_sandbox.sandbox.Sandbox.env`) and
the operator reads (`dpio.app.runtime.Config`). Whatever the source, the values go through
`dpio.vsphere.credentials.from_secret_data`: one validation for the operator and the CLI, with the
same messages (naming the key at fault, never a value).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dpio.vsphere import credentials as creds
from dpio.vsphere.credentials import Credentials, CredentialsError

# `.sandbox/env` (dpio_sandbox.sandbox.Sandbox.env): where the simulator is and how to trust it.
URL_ENV = "VSPHERE_URL"
USER_ENV = "VSPHERE_USER"
PASSWORD_ENV = "VSPHERE_PASSWORD"
CA_FILE_ENV = "VSPHERE_CA_FILE"
# dpio.app.runtime.Config: the operator's namespace and its default vCenter Secret.
NAMESPACE_ENV = "DPIO_NAMESPACE"
SECRET_ENV = "DPIO_VCENTER_SECRET"
DEFAULT_NAMESPACE = "dpio-system"
DEFAULT_SECRET = "vcenter"

#: Reads a Secret's decoded data: (namespace, name) -> data.
SecretReader = Callable[[str, str], Mapping[str, str | bytes]]


class UsageError(ValueError):
    """The command line (or environment) does not say enough to connect; exit code 1."""


@dataclass(frozen=True)
class SecretName:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def add_vcenter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "vCenter",
        f"Default: ${URL_ENV}, ${USER_ENV}, ${PASSWORD_ENV}, ${CA_FILE_ENV} (as `.sandbox/env` "
        f"exports them); without ${URL_ENV}, the operator's Secret "
        f"${NAMESPACE_ENV}/${SECRET_ENV} ({DEFAULT_NAMESPACE}/{DEFAULT_SECRET}).",
    )
    group.add_argument(
        "--vcenter-secret",
        metavar="NS/NAME",
        help="a vCenter Secret (keys server, username, password, caBundle|thumbprint|insecure)",
    )
    group.add_argument("--server", help="vCenter host name or https:// URL")
    group.add_argument("--user", help="vCenter user name")
    group.add_argument(
        "--password-env",
        metavar="VAR",
        default=PASSWORD_ENV,
        help="environment variable holding the password (never a flag: it would show in ps)",
    )
    trust = group.add_mutually_exclusive_group()
    trust.add_argument(
        "--ca-file", type=Path, help="PEM CA bundle that signs vCenter's certificate"
    )
    trust.add_argument("--thumbprint", help="SHA-1 or SHA-256 fingerprint of vCenter's certificate")
    trust.add_argument(
        "--insecure", action="store_true", help="do not verify vCenter's certificate at all"
    )


def parse_secret_name(text: str, default_namespace: str) -> SecretName:
    """`ns/name` or `name` (in the operator's namespace)."""
    namespace, _, name = text.rpartition("/")
    if not name or "/" in namespace:
        raise UsageError(f"--vcenter-secret must be NAMESPACE/NAME, not {text!r}")
    return SecretName(namespace or default_namespace, name)


def operator_secret(env: Mapping[str, str], name: str | None = None) -> SecretName:
    """The Secret the operator would read: `name` (a policy's secretRef) or its default one."""
    namespace = env.get(NAMESPACE_ENV, DEFAULT_NAMESPACE)
    return SecretName(namespace, name or env.get(SECRET_ENV, DEFAULT_SECRET))


def explicit_source(args: argparse.Namespace, env: Mapping[str, str]) -> SecretName | None:
    """`--vcenter-secret` as a SecretName; None when the flags or environment say otherwise."""
    if args.vcenter_secret:
        if args.server:
            raise UsageError("give either --vcenter-secret or --server, not both")
        return parse_secret_name(args.vcenter_secret, env.get(NAMESPACE_ENV, DEFAULT_NAMESPACE))
    return None


def has_direct(args: argparse.Namespace, env: Mapping[str, str]) -> bool:
    """Flags or environment name a vCenter directly (no Secret needed)."""
    return bool(args.server or env.get(URL_ENV))


def direct_data(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """Secret-shaped data from flags, with the environment's values as defaults."""
    server = args.server or env.get(URL_ENV, "")
    data = {
        creds.SERVER: server,
        creds.USERNAME: args.user or env.get(USER_ENV, ""),
        creds.PASSWORD: env.get(args.password_env, ""),
    }
    if not data[creds.PASSWORD]:
        raise UsageError(f"set the vCenter password in ${args.password_env}")
    # Environment trust applies only to the environment's own server.
    ca_file = args.ca_file
    if ca_file is None and not args.server and not args.thumbprint and not args.insecure:
        ca_file = Path(env[CA_FILE_ENV]) if env.get(CA_FILE_ENV) else None
    if ca_file is not None:
        try:
            data[creds.CA_BUNDLE] = ca_file.read_text()
        except OSError as err:
            raise UsageError(f"--ca-file {ca_file}: {err.strerror}") from err
    if args.thumbprint:
        data[creds.THUMBPRINT] = args.thumbprint
    if args.insecure:
        data[creds.INSECURE] = "true"
    return data


def resolve(
    args: argparse.Namespace,
    env: Mapping[str, str],
    read_secret: SecretReader,
    secret_ref: str | None = None,
) -> tuple[str, Credentials]:
    """(where the credentials came from, the credentials), in the documented order:
    --vcenter-secret or --server; a policy's secretRef; $VSPHERE_URL; the operator's Secret."""
    secret = explicit_source(args, env)
    if secret is None and not args.server and secret_ref is not None:
        secret = operator_secret(env, secret_ref)
    data: Mapping[str, str | bytes]
    if secret is None and has_direct(args, env):
        source, data = "flags" if args.server else f"${URL_ENV}", direct_data(args, env)
    else:
        secret = secret or operator_secret(env)
        source, data = f"Secret {secret}", dict(read_secret(secret.namespace, secret.name))
    try:
        return source, creds.from_secret_data(data)
    except CredentialsError as err:
        message = str(err) if secret is not None else flag_words(str(err))
        raise UsageError(f"{source}: {message}") from err


#: Secret keys -> the flags (and variables) that fill them, for messages about flags.
_FLAGS = {
    creds.SERVER: f"--server (${URL_ENV})",
    creds.USERNAME: f"--user (${USER_ENV})",
    creds.PASSWORD: "--password-env",
    creds.CA_BUNDLE: f"--ca-file (${CA_FILE_ENV})",
    creds.THUMBPRINT: "--thumbprint",
    creds.INSECURE: "--insecure",
}


def flag_words(message: str) -> str:
    """`Secret key 'username' is missing` -> `--user ($VSPHERE_USER) is missing`."""
    message = message.replace(f'{creds.INSECURE}: "true"', "--insecure")
    for key, flag in _FLAGS.items():
        message = message.replace(f"Secret key {key!r}", flag).replace(repr(key), flag)
    return message.replace("Secret needs", "Give").replace("Secret sets", "Flags set")

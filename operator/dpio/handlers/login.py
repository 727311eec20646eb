"""kopf's own connection to the API server, from the same credentials as the operator's calls
(`dpio.kube.credentials`): the pod's ServiceAccount, else the kubeconfig. kopf asks again on a
401 or when a plugin's token expires, so a rotated token is read afresh."""

from __future__ import annotations

from typing import Any

import kopf

from dpio.app.runtime import kube_credentials


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    creds = kube_credentials()
    authorization = creds.authorization()
    scheme, _space, token = (authorization or "").partition(" ")
    # client-go's rule where a kubeconfig holds both: the inline data wins.
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_path=None if creds.ca_data else creds.ca_file,
        ca_data=creds.ca_data,
        insecure=creds.insecure,
        scheme=scheme or None,
        token=token or None,
        certificate_path=None if creds.cert_data else creds.cert_file,
        certificate_data=creds.cert_data,
        private_key_path=None if creds.key_data else creds.key_file,
        private_key_data=creds.key_data,
        default_namespace=creds.namespace,
        expiration=creds.token_expires(),
    )

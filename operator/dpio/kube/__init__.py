"""The Kubernetes adapter: status, finalizers, Events, Secrets and Leases as JSON over HTTPS
(rest.py), with the credentials kubectl would use (credentials.py). No kubernetes client: the
operator's process never imports it (docs/benchmarks.md, finding 36).

kopf watches; this package writes. Reconcilers see it only through the protocol in
`dpio.reconcile.ports`.
"""

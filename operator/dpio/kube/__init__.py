"""The Kubernetes adapter: status, finalizers, Events and Secrets through the official client.

kopf watches; this package writes. Reconcilers see it only through the protocol in
`dpio.reconcile.ports`.
"""

"""The composition root: the long-lived parts the operator builds at startup (`runtime`), and the
adapters plugged into the reconcilers' ports (`wiring`, `vm_wiring`, `logins`, `resync`).
Imports no kopf handler module: `dpio.handlers` imports this package, never the other way."""

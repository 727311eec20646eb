"""Pydantic models of the dpio.io/v1alpha1 API; the CRDs are generated from them."""

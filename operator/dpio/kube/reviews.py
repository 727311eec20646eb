"""TokenReviews and SubjectAccessReviews for the metrics endpoint's authentication filter
(`dpio.observability.metrics_auth.Reviewer`).

Blocking calls, on purpose: they run on the metrics server's request threads, never on the
event loop. The operator's ServiceAccount needs `create` on tokenreviews (authentication.k8s.io)
and subjectaccessreviews (authorization.k8s.io); the chart grants both only with secure metrics.
"""

from __future__ import annotations

from typing import Any

from dpio.kube.credentials import Credentials
from dpio.kube.rest import KubeError, SyncApiServer
from dpio.kube.rest import path as api_path
from dpio.observability.metrics_auth import ReviewError, User

#: The API server has this long to answer one review (controller-runtime's TokenReview timeout).
REVIEW_TIMEOUT = 10.0


class KubeReviewer:
    """Asks the API server who a token is (TokenReview, authentication.k8s.io/v1) and whether
    that user may use a non-resource URL (SubjectAccessReview, authorization.k8s.io/v1)."""

    def __init__(self, api: SyncApiServer) -> None:
        self._api = api

    @classmethod
    def of(cls, creds: Credentials) -> KubeReviewer:
        return cls(SyncApiServer(creds, timeout=REVIEW_TIMEOUT))

    def authenticate(self, token: str) -> User | None:
        # No audiences: the API server's own, which a ServiceAccount token (Prometheus's) has.
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": token}}  # fmt: skip
        status = self._create("authentication.k8s.io", "tokenreviews", review)
        user = status.get("user")
        if not status.get("authenticated") or not isinstance(user, dict):
            return None
        return User(
            name=str(user.get("username") or ""),
            uid=str(user.get("uid") or ""),
            groups=tuple(user.get("groups") or ()),
            extra={key: tuple(values or ()) for key, values in (user.get("extra") or {}).items()},
        )

    def authorize(self, user: User, verb: str, path: str) -> bool:
        spec: dict[str, Any] = {
            "user": user.name,
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra.items()}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": spec}  # fmt: skip
        return bool(
            self._create("authorization.k8s.io", "subjectaccessreviews", review).get("allowed")
        )

    def close(self) -> None:
        """Nothing is held between reviews (each opens its own connection)."""

    def _create(self, group: str, plural: str, review: dict[str, Any]) -> dict[str, Any]:
        try:  # 403: the operator may not create reviews (chart RBAC)
            answer = self._api.request("POST", api_path("apis", group, "v1", plural), review)
        except KubeError as err:  # unreachable, timed out, refused, garbled
            raise ReviewError(f"{plural}: {err}") from err
        status = answer.get("status") if isinstance(answer, dict) else None
        return status if isinstance(status, dict) else {}

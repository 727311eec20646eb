"""TokenReviews and SubjectAccessReviews for the metrics endpoint's authentication filter
(`dpio.observability.metrics_auth.Reviewer`).

Blocking calls, on purpose: they run on the metrics server's request threads, never on the
event loop. The operator's ServiceAccount needs `create` on tokenreviews (authentication.k8s.io)
and subjectaccessreviews (authorization.k8s.io); the chart grants both only with secure metrics.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from dpio.observability.metrics_auth import ReviewError, User

#: The API server has this long to answer one review (controller-runtime's TokenReview timeout).
REVIEW_TIMEOUT = 10.0


class KubeReviewer:
    """Asks the API server who a token is (TokenReview, authentication.k8s.io/v1) and whether
    that user may use a non-resource URL (SubjectAccessReview, authorization.k8s.io/v1)."""

    def __init__(self, api: k8s.ApiClient, *, timeout: float = REVIEW_TIMEOUT) -> None:
        self._api = api
        self._authn = k8s.AuthenticationV1Api(api)
        self._authz = k8s.AuthorizationV1Api(api)
        self._timeout = timeout

    def authenticate(self, token: str) -> User | None:
        # No audiences: the API server's own, which a ServiceAccount token (Prometheus's) has.
        review = k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token=token))
        status = self._call(self._authn.create_token_review, review).status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return User(
            name=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={key: tuple(values or ()) for key, values in (user.extra or {}).items()},
        )

    def authorize(self, user: User, verb: str, path: str) -> bool:
        spec = k8s.V1SubjectAccessReviewSpec(
            user=user.name,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra={key: list(values) for key, values in user.extra.items()} or None,
            non_resource_attributes=k8s.V1NonResourceAttributes(path=path, verb=verb),
        )
        review = k8s.V1SubjectAccessReview(spec=spec)
        status = self._call(self._authz.create_subject_access_review, review).status
        return bool(status is not None and status.allowed)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def _call(self, create: Any, review: Any) -> Any:
        try:
            return create(review, _request_timeout=self._timeout)
        except ApiException as err:  # 403: the operator may not create reviews (chart RBAC)
            raise ReviewError(f"{create.__name__}: {err.status} {err.reason}") from err
        except (HTTPError, OSError, ValueError) as err:  # unreachable, timed out, garbled
            raise ReviewError(f"{create.__name__}: {err}") from err

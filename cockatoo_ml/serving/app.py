"""The inference API: a Quart app factory with routes, one error handler, auth, metrics and an access log.

``create_app`` loads the model once and wires it to a micro-batcher that runs on the app's event loop. Every
failure a client can cause becomes a JSON ``{"error": ...}`` with a 4xx status in ``_error_response``; anything
else is a bug, logged once with its traceback and the request id, and answered with a 500 carrying that id.
Before a request's texts are queued, their cost is counted in tokens on a worker thread (``budget.py``).
"""

from __future__ import annotations

import functools
import gc
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from time import perf_counter
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError
from quart import Quart, Request, Response, current_app, g, request
from quart_schema import (
    OpenAPIProvider,
    QuartSchema,
    RequestSchemaValidationError,
    document_response,
    hide,
    validate_request,
    validate_response,
)
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    MethodNotAllowed,
    RequestEntityTooLarge,
    RequestTimeout,
    Unauthorized,
)

from cockatoo_ml import __version__
from cockatoo_ml.errors import CockatooError
from cockatoo_ml.inference.budget import OverBudgetError, TokenBudget
from cockatoo_ml.inference.cascade import Cascade, Tier, load_cascade
from cockatoo_ml.inference.classifier import (
    ReadyCallback,
    ScoreItem,
    TextClassifier,
    TextScore,
    UnknownLabelError,
    first_line,
)
from cockatoo_ml.inference.decisions import decide
from cockatoo_ml.inference.loading import load_classifier, model_thread_plan
from cockatoo_ml.inference.runtime import HeapTrimmer
from cockatoo_ml.logging import configure_logging, escape_for_log
from cockatoo_ml.registry.serving import ServingSettings, serving_settings_from_env
from cockatoo_ml.serving import protocol
from cockatoo_ml.serving.batcher import MicroBatcher, QueueFullError
from cockatoo_ml.serving.cascade import TieredScorer
from cockatoo_ml.serving.moderations import CategoryMap, UnknownModelError
from cockatoo_ml.serving.schemas import (
    INPUT_ITEM_TAGS,
    INPUT_TAGS,
    THRESHOLD_TAGS,
    BatchRequest,
    BatchResponse,
    CascadeHealth,
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ModerationRequest,
    ModerationResponse,
    OpenAIError,
    OpenAIErrorResponse,
    PrecisionHealth,
    Prediction,
    PredictRequest,
)
from cockatoo_ml.settings import load_env_file

log = logging.getLogger(__name__)
access_log = logging.getLogger("cockatoo_ml.access")

# Reachable without the API key: liveness probes and the API description hold no data.
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs"})
# Swagger UI's JS and CSS for /docs, served from the swagger-ui-bundle package so the page works offline.
DOCS_ASSETS_PATH = "/docs/assets"
CLIENT_ERRORS = (400, 401, 408, 413, 422, 429)
# Routes under this prefix speak OpenAI's API: their errors take OpenAI's shape, and a bad field is a 400 there.
OPENAI_PREFIX = "/v1/"
OPENAI_CLIENT_ERRORS = (400, 401, 408, 413, 429)
SCORE_DECIMALS = 4  # as the seed's responses
# A 422 names at most this many invalid fields (and counts the rest): 100k bad items must not make a 7 MB answer.
MAX_ERROR_DETAILS = 5
REQUEST_ID_HEADER = "X-Request-ID"
NOT_PARSED = object()


class JSONBodyRequest(Request):
    """Parses the body as strict JSON whatever its Content-Type (``curl -d`` sends form encoding), and turns
    every way it can fail (bad UTF-8, NaN, nesting too deep for the parser) into a 400."""

    _parsed: Any = NOT_PARSED

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if cache and self._parsed is not NOT_PARSED:
            return self._parsed
        raw = await self.get_data(cache=cache, as_text=False)
        try:
            parsed = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            if silent:
                return None
            raise BadRequest(f"request body is not valid JSON ({first_line(exc)})") from None
        if cache:
            self._parsed = parsed
        return parsed


class TooManyTextsError(RequestEntityTooLarge):
    """More texts in one request than COCKATOO_MAX_BATCH_TEXTS (413), naming the list's field."""

    def __init__(self, field: str, count: int, limit: int) -> None:
        super().__init__(
            f"{field}: {count} texts in one request; the limit is {limit} (COCKATOO_MAX_BATCH_TEXTS): split the batch"
        )
        self.field = field


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


class CockatooOpenAPI(OpenAPIProvider):
    """quart-schema's OpenAPI, plus what the server enforces beyond the pydantic models: a request body is
    required, threshold maps take only the served model's labels as keys, and ``model`` only the names the served
    model answers to."""

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        body, components = super().build_request_body(model, source)
        served = self._app.extensions["cockatoo"]
        labels = list(served["classifier"].labels)
        for content in body["content"].values():
            properties = content["schema"].get("properties", {})
            for shape in _walk_schemas(properties.get("threshold")):
                if shape.get("type") == "object" and "additionalProperties" in shape:
                    shape["propertyNames"] = {"enum": labels}
            if model is ModerationRequest:
                for shape in _walk_schemas(properties.get("model")):
                    if shape.get("type") == "string":
                        shape["enum"] = sorted(served["model_names"])
        return {**body, "required": True}, components


def _walk_schemas(schema: Any) -> list[dict[str, Any]]:
    """A JSON schema and every schema nested in its anyOf/oneOf."""
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for key in ("anyOf", "oneOf"):
        for child in schema.get(key, []):
            found.extend(_walk_schemas(child))
    return found


class ServingMetrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cockatoo_requests", "HTTP requests by route and status", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cockatoo_request_latency_seconds",
            "Request latency by route",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_size = Histogram(
            "cockatoo_batch_texts",
            "Texts (through the cascade: windows) scored together in one model call",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.queue_depth = Gauge("cockatoo_queue_texts", "Texts waiting for the model", registry=self.registry)
        self.texts = Counter(
            "cockatoo_texts",
            "Texts scored by the model (through the cascade: each window of a text its student was not sure of)",
            registry=self.registry,
        )
        self.answered = Counter(
            "cockatoo_answered_texts",
            "Texts answered, by tier (the cascade's student or the model)",
            ["tier"],
            registry=self.registry,
        )
        self.protocol_rejections = Counter(
            "cockatoo_protocol_rejections",
            "Requests Hypercorn turned down before the app saw them (protocol.py)",
            ["status", "reason"],
            registry=self.registry,
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)


def build_prediction(
    text: str, score: TextScore, labels: Sequence[str], thresholds: dict[str, float], tier: Tier = "model"
) -> Prediction:
    """The seed's response shape from one text's scores; thresholds compare the unrounded scores."""
    decision = decide(score.scores, labels, thresholds)
    return Prediction(
        text=text,
        predictions={label: round(value, SCORE_DECIMALS) for label, value in decision.scores.items()},
        positive_labels=decision.positive_labels,
        flagged=decision.flagged,
        top_label=decision.top_label,
        max_score=round(decision.max_score, SCORE_DECIMALS) if decision.max_score is not None else None,
        windows=score.windows,
        tier=tier,
    )


def create_app(settings: ServingSettings | None = None, classifier: TextClassifier | None = None) -> Quart:
    """The API serving ``classifier`` (default: the model in ``settings.model_dir``, loaded now, once)."""
    settings = settings or serving_settings_from_env()
    model_threads, torch_threads = model_thread_plan(settings)
    if classifier is None:
        classifier = load_classifier(settings)
    app = Quart(__name__, static_folder=str(swagger_ui_path), static_url_path=DOCS_ASSETS_PATH)
    app.request_class = JSONBodyRequest
    # Never debug mode: it would put tracebacks into responses.
    app.config.update(
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        BODY_TIMEOUT=settings.body_timeout_s,  # a whole body, however slowly trickled, must arrive in time
        QUART_SCHEMA_SWAGGER_JS_URL=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
        QUART_SCHEMA_SWAGGER_CSS_URL=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
    )
    QuartSchema(
        app,
        info={"title": "Cockatoo ML inference API", "version": __version__},
        openapi_provider_class=CockatooOpenAPI,
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}] if settings.api_key else None,
    )
    metrics = ServingMetrics()

    trim_heap = HeapTrimmer()

    def score(texts: list[ScoreItem], ready: ReadyCallback) -> list[TextScore]:
        metrics.texts.inc(len(texts))
        try:
            return classifier.score(texts, ready)
        finally:
            trim_heap()

    batcher: MicroBatcher[TextScore] = MicroBatcher(
        score,
        max_batch_texts=settings.micro_batch_size,
        max_wait_ms=settings.micro_batch_wait_ms,
        max_queue_texts=settings.max_queue_texts,
        max_queue_cost=settings.max_queue_tokens,
        workers=model_threads,
        retry_after_s=settings.retry_after_s,
        on_batch=metrics.batch_size.observe,
        on_queue_depth=metrics.queue_depth.set,
    )
    budget = TokenBudget(classifier.count_tokens, settings.max_text_tokens, settings.max_request_tokens)
    cascade = load_cascade(settings.model_dir, settings.cascade == "on", classifier, settings.student_word_cache_mb)
    tiers = TieredScorer(batcher, classifier, cascade, on_answered=lambda tier, n: metrics.answered.labels(tier).inc(n))
    wanted_categories = settings.category_map()
    categories = CategoryMap.build(classifier.labels, wanted_categories)
    model_names = frozenset({settings.display_name, *settings.openai_models})
    protocol.install()  # Hypercorn's own rejections (400/408/431/501) are explained, logged and counted
    app.extensions[protocol.LISTENER_KEY] = lambda status, reason: metrics.protocol_rejections.labels(
        str(status), reason
    ).inc()
    app.extensions["cockatoo"] = {
        "settings": settings,
        "classifier": classifier,
        "batcher": batcher,
        "cascade": cascade,
        "model_names": model_names,
    }

    async def score_texts(
        texts: list[str], field: str, student_allowed: bool, single: bool = False
    ) -> list[tuple[TextScore, Tier]]:
        # Every text is held to its token budget, whichever tier answers it (counted off the event loop, with the
        # student's pass: tokenizing a long text takes a while).
        return await tiers.score(texts, student_allowed, check=lambda batch: budget.count(batch, field, single))

    @app.before_serving
    async def start_batcher() -> None:
        await batcher.start()
        freeze_start_up_heap()

    @app.after_serving
    async def stop_batcher() -> None:
        await batcher.stop()  # Hypercorn has already let in-flight requests finish

    @app.before_request
    async def authenticate() -> None:
        g.started = perf_counter()
        g.texts = []
        g.request_id = uuid.uuid4().hex
        if settings.api_key and not _is_open(request.path):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
                raise Unauthorized("missing or wrong API key; send 'Authorization: Bearer <COCKATOO_API_KEY>'")

    @app.after_request
    async def record(response: Response) -> Response:
        endpoint = _endpoint(app)
        elapsed = perf_counter() - g.get("started", perf_counter())
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(elapsed)
        texts = g.get("texts", [])
        extra = f" texts={json.dumps(texts, ensure_ascii=False)}" if settings.log_texts and texts else ""
        access_log.info(
            "%s %s %s %d %.1fms n_texts=%d id=%s%s",
            request.remote_addr,
            request.method,
            escape_for_log(request.path),
            response.status_code,
            elapsed * 1000,
            len(texts),
            g.get("request_id", "-"),
            escape_for_log(extra),
        )
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.errorhandler(Exception)
    async def handle_error(error: Exception) -> Response:
        return _error_response(error)

    @app.get("/health")
    @validate_response(HealthResponse, 200)
    @validate_response(HealthResponse, 503)
    async def health() -> tuple[HealthResponse, int]:
        """Readiness and what is being served (open even when an API key is set): 503 with a reason when the
        model cannot score."""
        problem = batcher.problem
        return HealthResponse(
            status="unavailable" if problem else "ok",
            reason=problem,
            model=settings.display_name,
            labels=list(classifier.labels),
            problem_type="multi_label" if classifier.multi_label else "single_label",
            window_tokens=classifier.window,
            dtype=classifier.dtype,
            precision=PrecisionHealth(path=classifier.precision.path, reason=classifier.precision.reason),
            thresholds=classifier.thresholds,
            cascade=_cascade_health(cascade),
            openai_categories=categories.shown(wanted_categories),
            version=__version__,
        ), 503 if problem else 200

    @app.post("/predict")
    @_document_errors
    @validate_request(PredictRequest)
    @validate_response(Prediction)
    async def predict(data: PredictRequest) -> Prediction:
        """Classify one text; concurrent calls are batched together."""
        thresholds = classifier.resolve_thresholds(data.threshold)
        g.texts = [data.text]
        [(result, tier)] = await score_texts([data.text], "text", student_allowed=data.threshold is None, single=True)
        return build_prediction(data.text, result, classifier.labels, thresholds, tier)

    def at_most_max_batch_texts(field: str) -> Any:
        # Counted before pydantic validates the texts one by one on the event loop: a batch of 20,000 integers
        # held the loop for 0.3 s on an idle core (seconds on a busy one; pydantic builds 20,000 errors), and
        # every other request waited.
        def decorate(view: Any) -> Any:
            @functools.wraps(view)
            async def counted(*args: Any, **kwargs: Any) -> Any:
                body = await request.get_json(silent=True)
                texts = body.get(field) if isinstance(body, dict) else None
                if isinstance(texts, list) and len(texts) > settings.max_batch_texts:
                    raise TooManyTextsError(field, len(texts), settings.max_batch_texts)
                return await view(*args, **kwargs)

            return counted

        return decorate

    @app.post("/batch")
    @_document_errors
    @at_most_max_batch_texts("texts")
    @validate_request(BatchRequest)
    @validate_response(BatchResponse)
    async def batch(data: BatchRequest) -> BatchResponse:
        """Classify many texts in one call; results keep the input order."""
        thresholds = classifier.resolve_thresholds(data.threshold)
        g.texts = data.texts
        results = await score_texts(data.texts, "texts", student_allowed=data.threshold is None)
        return BatchResponse(
            count=len(results),
            results=[
                build_prediction(text, result, classifier.labels, thresholds, tier)
                for text, (result, tier) in zip(data.texts, results, strict=True)
            ],
        )

    @app.post("/v1/moderations")
    @_document_openai_errors
    @at_most_max_batch_texts("input")
    @validate_request(ModerationRequest)
    @validate_response(ModerationResponse)
    async def moderations(data: ModerationRequest) -> ModerationResponse:
        """OpenAI's moderation API (`client.moderations.create`): scored as /batch scores, answered in OpenAI's
        shape, each label under its own name and, where it has one, its OpenAI category's."""
        if data.model is not None and data.model not in model_names:
            raise UnknownModelError(data.model, settings.display_name, sorted(model_names - {settings.display_name}))
        texts = data.texts()
        g.texts = texts
        results = await score_texts(texts, "input", student_allowed=True, single=isinstance(data.input, str))
        return ModerationResponse(
            id=f"modr-{g.request_id}",
            model=settings.display_name,
            results=[categories.moderation(result.scores, classifier.thresholds, tier) for result, tier in results],
        )

    @app.get("/metrics")
    @hide
    async def prometheus_metrics() -> Response:
        return metrics.render()

    log.info("serving %s with settings %s", settings.display_name, json.dumps(settings.public_dict()))
    log.info("%d forward passes at once, %d torch threads each", model_threads, torch_threads)
    log.info("cascade: %s", json.dumps(_cascade_health(cascade).model_dump()))
    return app


def freeze_start_up_heap() -> None:
    """Move everything alive after start-up (torch, transformers, the model: ~400k objects) out of the garbage
    collector's sight, once per process (``gc.freeze``): it lives as long as the process, yet every full collection
    walked it, about 0.25 CPU-seconds each on a 2-core machine, and the routes that allocate most (a /v1/moderations
    answer holds three dicts per text) set off the most of them."""
    if gc.get_freeze_count() == 0:
        gc.collect()  # garbage from loading is freed, not frozen
        gc.freeze()


def _cascade_health(cascade: Cascade | None) -> CascadeHealth:
    if cascade is None:
        return CascadeHealth(enabled=False)
    return CascadeHealth(
        enabled=True,
        student=cascade.student.kind,
        held_out_agreement=cascade.held_out.get("decision_agreement"),
        held_out_answered_share=cascade.held_out.get("answered_share"),
        held_out_texts=cascade.held_out.get("texts"),
    )


def create_app_from_env() -> Quart:
    """For ``hypercorn app:app``: ``.env`` and ``COCKATOO_*`` settings; a user's mistake (say, no model
    directory) stops start-up with one line instead of a traceback."""
    try:
        load_env_file()
        configure_logging()
        return create_app()
    except CockatooError as exc:
        raise SystemExit(f"error: {exc}") from None


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(f"{DOCS_ASSETS_PATH}/")


def _endpoint(app: Quart) -> str:
    """The route a request is counted under: its rule, also when only the method was wrong (405)."""
    if request.url_rule is not None:
        return request.url_rule.rule
    if isinstance(request.routing_exception, MethodNotAllowed):
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        if request.path in rules:  # our routes have no variables
            return request.path
    return "unmatched"


def _document_errors(func: Any) -> Any:
    for status in CLIENT_ERRORS:
        func = document_response(ErrorResponse, status)(func)
    return func


def _document_openai_errors(func: Any) -> Any:
    for status in OPENAI_CLIENT_ERRORS:
        func = document_response(OpenAIErrorResponse, status)(func)
    return func


def _error_response(error: Exception) -> Response:
    """The one place where exceptions become HTTP answers, in the seed's shape or, under ``OPENAI_PREFIX``,
    OpenAI's."""
    details: list[ErrorDetail] = []
    headers: dict[str, str] = {}
    error_count = 0
    code: str | None = None
    request_id = g.get("request_id")
    if isinstance(error, RequestSchemaValidationError):
        status = 422
        details, error_count = _validation_details(error.validation_error)
        message = "; ".join(f"{d.field}: {d.message}" for d in details[:3]) or "invalid request body"
        if error_count > 3:
            message += f" (and {error_count - 3} more)"
    elif isinstance(error, UnknownLabelError):
        status, message = 422, f"threshold.{error.label}: {error}"
        details, error_count = [ErrorDetail(field=f"threshold.{error.label}", message=str(error))], 1
    elif isinstance(error, UnknownModelError):
        status, message, code = 400, str(error), "model_not_found"
        details, error_count = [ErrorDetail(field="model", message=str(error))], 1
    elif isinstance(error, OverBudgetError):
        status, message = 413, str(error)
        details, error_count = [ErrorDetail(field=error.field, message=str(error))], 1
    elif isinstance(error, TooManyTextsError):
        status, message = 413, f"{error.name}: {error.description}"
        details, error_count = [ErrorDetail(field=error.field, message=str(error.description))], 1
    elif isinstance(error, RequestTimeout):
        status = 408
        timeout = current_app.config["BODY_TIMEOUT"]
        message = f"the request body did not arrive within {timeout:g}s (COCKATOO_BODY_TIMEOUT_S)"
    elif isinstance(error, QueueFullError):
        status, message = 429, str(error)
        headers["Retry-After"] = str(error.retry_after_s)
    elif isinstance(error, RequestEntityTooLarge) and error.description == RequestEntityTooLarge.description:
        status = 413  # raised by Quart while reading the body
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        message = f"request body is over the {limit}-byte limit (COCKATOO_MAX_BODY_BYTES)"
    elif isinstance(error, HTTPException) and error.code is not None:
        status, message = error.code, f"{error.name}: {error.description}"
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="cockatoo"'
        elif status == 405 and (allowed := getattr(error, "valid_methods", None)):
            headers["Allow"] = ", ".join(allowed)
    elif isinstance(error, CockatooError):
        status, message = 400, str(error)
    else:
        log.error(
            "unhandled error on %s %s (request id %s)",
            request.method,
            escape_for_log(request.path),
            request_id,
            exc_info=error,
        )
        status, message = 500, f"internal server error (request id {request_id}; quote it when reporting)"
    if request.path.startswith(OPENAI_PREFIX):
        return _openai_error(status, message, details[0].field if details else None, code, headers)
    body = ErrorResponse(
        error=message, detail=details, error_count=error_count, request_id=request_id if status == 500 else None
    ).model_dump(exclude_none=True)
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _openai_error(status: int, message: str, param: str | None, code: str | None, headers: dict[str, str]) -> Response:
    """OpenAI's error shape, which its SDKs turn into their own exceptions by status (BadRequestError, ...). An
    invalid field is a 400 there, as OpenAI answers it, where the seed routes say 422."""
    status = 400 if status == 422 else status
    kind = {429: "requests", 500: "server_error"}.get(status, "invalid_request_error")
    code = code or {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    body = OpenAIErrorResponse(error=OpenAIError(message=message, type=kind, param=param, code=code))
    return Response(body.model_dump_json(), status=status, headers=headers, content_type="application/json")


def _validation_details(error: Exception) -> tuple[list[ErrorDetail], int]:
    """The first ``MAX_ERROR_DETAILS`` invalid fields and how many there are in all."""
    if not isinstance(error, ValidationError):
        return [ErrorDetail(field="body", message=first_line(error))], 1
    items = error.errors(include_url=False, include_context=False, include_input=False)
    return [
        ErrorDetail(field=_field_name(item["loc"]), message=item["msg"][:500]) for item in items[:MAX_ERROR_DETAILS]
    ], len(items)


def _field_name(loc: tuple[int | str, ...]) -> str:
    """``("threshold", "map", "nsfw")`` -> ``threshold.nsfw``, ``("input", "list", 3, "object", "text")`` ->
    ``input.3.text``: the union tags are ours, not the client's."""
    parts: list[object] = list(loc)
    for position, tags in _UNION_TAGS.get(str(parts[0]) if parts else "", ()):
        if len(parts) > position and parts[position] in tags:
            parts[position] = None
    return ".".join(str(part) for part in parts if part is not None) or "body"


# Where each field's unions put their tag in a pydantic error location (see schemas.py).
_UNION_TAGS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    "threshold": ((1, THRESHOLD_TAGS),),
    "input": ((1, INPUT_TAGS), (3, INPUT_ITEM_TAGS)),
}

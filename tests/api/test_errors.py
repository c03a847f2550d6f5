from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from kinema.api.errors import ApiError, envelope, handle_api_error, handle_http, handle_validation


class Body(BaseModel):
    prompt: str = Field(max_length=5)


def client() -> TestClient:
    app = FastAPI()
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(HTTPException, handle_http)

    @app.post("/t")
    def create(body: Body) -> dict[str, object]:
        if body.prompt == "busy":
            raise ApiError(1303, "parallel task over resource pack limit")
        return envelope({"ok": True})

    return TestClient(app)


def test_success_wears_the_envelope() -> None:
    body = client().post("/t", json={"prompt": "hi"}).json()
    assert body["code"] == 0 and body["message"] == "SUCCEED" and body["data"] == {"ok": True}
    assert body["request_id"]


def test_errors_are_never_200_and_carry_kling_codes() -> None:
    c = client()
    busy = c.post("/t", json={"prompt": "busy"})
    assert (busy.status_code, busy.json()["code"]) == (429, 1303) and "data" not in busy.json()
    too_long = c.post("/t", json={"prompt": "far too long"})
    assert (too_long.status_code, too_long.json()["code"]) == (400, 1201)
    assert too_long.json()["message"].startswith("prompt:")
    not_json = c.post("/t", content=b"{nope", headers={"content-type": "application/json"})
    assert (not_json.status_code, not_json.json()["code"]) == (400, 1200)
    missing = c.get("/nowhere")
    assert (missing.status_code, missing.json()["code"]) == (404, 1202)
    wrong_method = c.get("/t")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (404, 1202)

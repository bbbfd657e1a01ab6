"""The smallest FastAPI app: `make run` serves it on http://127.0.0.1:8000/."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root() -> dict[str, str]:
    return {"hello": "world"}

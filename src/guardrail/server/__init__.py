"""guardrail serve: the HTTP service (FastAPI on uvicorn) over guard, counter and audit."""

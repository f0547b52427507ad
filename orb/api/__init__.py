"""FastAPI app over the runs folder: read-only, typed, every file read through orb.runs.read.

`create_app()` (orb.api.app) builds the app; `api_server.py` exposes it for `uvicorn api_server:app` and
`python api_server.py`. Errors map to JSON `detail`: malformed id or parameter 422, unknown run or
symbol, or an output the run's mode does not write, 404; damaged run or a file off the run format
409; missing or wrong API key 401. Research runs (docs/research.md) are read through /api/sweeps,
/api/walkforward and /api/montecarlo. Modules: `models` (response models), `deps` (runs folder, API key,
parameter types), `routes.runs` and `routes.research` (the endpoints), `app` (create_app).
"""

from orb.api.app import create_app

__all__ = ["create_app"]

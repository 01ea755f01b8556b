"""instructor as a client of the gateway: extract a pydantic model and print it as JSON.

Run by the Python of this folder's own environment (``tests/agents/python/.venv``, made
by ``scripts/setup dev`` from ``uv.lock``), never the project's: instructor pins what the
project's ``openai`` SDK cannot share. ``tests/integration/test_instructor.py`` runs it.

    instructor_client.py GATEWAY_URL MODEL MODE [MODE ...] [--endpoint openai|anthropic] [--stream]

Each ``MODE`` is an ``instructor.Mode`` name. ``--endpoint anthropic`` (the default for
the ``ANTHROPIC_*`` modes) goes through the gateway's Anthropic Messages endpoint
(``instructor.from_anthropic``; there ``JSON_SCHEMA`` is Claude's native structured
output, ``output_format``), ``--endpoint openai`` (the default otherwise) through its
OpenAI Chat Completions endpoint (``instructor.from_openai``). ``--stream`` extracts with
``create_partial`` and keeps the last partial object.

One line of JSON per mode on stdout, in order: ``{"mode": MODE, "city": {...}}``, or
``{"mode": MODE, "error": "..."}`` with the traceback on stderr. The exit status is
non-zero if any mode failed. Several modes in one run share one start of the SDKs (about
a second of imports), which is most of what a run costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import instructor
from anthropic import Anthropic
from openai import OpenAI
from pydantic import BaseModel

#: Any key works: the gateway under test runs in open mode. No retries, by instructor (which
#: would ask again after an answer it cannot validate) or by the SDKs: a failure shows.
KEY = "mw-any-key-in-open-mode"
PROMPT = "Describe Paris: its name, population and a few landmarks."


class City(BaseModel):
    name: str
    population: int
    landmarks: list[str]


def extract(base_url: str, model: str, mode: instructor.Mode, endpoint: str, stream: bool) -> City:
    """The ``City`` instructor gets from ``model`` through the gateway at ``base_url``."""
    messages: Any = [{"role": "user", "content": PROMPT}]  # the two SDKs type it apart
    if endpoint == "anthropic":
        anthropic = Anthropic(base_url=base_url, api_key=KEY, max_retries=0, timeout=20)
        client = instructor.from_anthropic(anthropic, mode=mode)
        if stream:
            partials = client.messages.create_partial(
                model=model,
                max_tokens=1024,
                messages=messages,
                response_model=City,
                max_retries=0,
            )
            return _last(partials)
        return client.messages.create(
            model=model, max_tokens=1024, messages=messages, response_model=City, max_retries=0
        )
    openai = OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0, timeout=20)
    client = instructor.from_openai(openai, mode=mode)
    if stream:
        partials = client.chat.completions.create_partial(
            model=model, messages=messages, response_model=City, max_retries=0
        )
        return _last(partials)
    return client.chat.completions.create(
        model=model, messages=messages, response_model=City, max_retries=0
    )


def _last(partials: Iterable[Any]) -> City:
    """The last of a stream of partial objects, which is the whole one, as a ``City``."""
    last = None
    for partial in partials:
        last = partial
    if last is None:
        raise RuntimeError("the stream gave no partial object")
    # A partial model has every field optional: validating it again proves it complete.
    return City.model_validate(last.model_dump())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [mode.name for mode in instructor.Mode]
    parser.add_argument("base_url", help="the gateway's root URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("model", help="a model name the gateway routes, e.g. openai/gpt-5")
    parser.add_argument("modes", nargs="+", choices=names, metavar="MODE")
    parser.add_argument("--endpoint", choices=["openai", "anthropic"], help="the gateway's API")
    parser.add_argument("--stream", action="store_true", help="extract with create_partial")
    args = parser.parse_args()
    failed = False
    for name in args.modes:
        endpoint = args.endpoint or ("anthropic" if name.startswith("ANTHROPIC_") else "openai")
        mode = instructor.Mode[name]
        try:
            city = extract(args.base_url.rstrip("/"), args.model, mode, endpoint, args.stream)
        except Exception as error:  # reported, and the other modes still run
            traceback.print_exc()
            line = {"mode": name, "error": f"{type(error).__name__}: {error}"}
            failed = True
        else:
            line = {"mode": name, "city": city.model_dump(mode="json")}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The model worker: a separate process that imports torch, transformers and grad-cam, loads the default models
and runs every model pass the app asks for (``histoapp.models.ops``), so the app's process never imports them.
``app.py`` starts it before importing Gradio: on two cores the worker's imports and loads run beside the app's
own Gradio import and UI build, and the models are warm about when the page is served.

``python -m histoapp.models.worker FD``: FD is this end of a socket pair (``histoapp.models.worker_client``).
Messages are pickled tuples: from the app ``("init", {"ops": module, "settings": Settings, "warm": bool})`` once,
then ``("call", id, op, args)``; to the app ``("state", {...})`` as the warm-up goes and ``("result", id, ok,
value)`` per call. Calls run in a few threads (the app's batcher sends one batch at a time; a VLM answer or a
class list may come beside it); a call for a model being loaded waits for that load (``ModelRegistry.load``).
The worker exits when the app's end of the socket closes (the app exited, was killed, or closed it)."""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

CALL_THREADS = 4


class Worker:
    def __init__(self, conn: Connection):
        self.conn = conn
        self._send_lock = threading.Lock()

    def send(self, message: tuple) -> None:
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable result: say so instead
            if message[0] != "result":
                raise
            data = pickle.dumps(("result", message[1], False, ("RuntimeError", f"unpicklable result ({exc})", None)))
        with self._send_lock:
            try:
                self.conn.send_bytes(data)
            except OSError:  # the app is gone: nobody to answer
                os._exit(0)

    def serve(self) -> None:
        kind, init = pickle.loads(self.conn.recv_bytes())
        assert kind == "init", kind
        module = importlib.import_module(init.get("ops", "histoapp.models.ops"))
        state = module.setup(init["settings"])
        if init.get("warm", True):
            threading.Thread(target=self._warm, args=(module, state), name="histoapp-warmup", daemon=True).start()
        else:
            self.send(("state", {"state": "ready", "models": [], "seconds": 0.0}))
        pool = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="histoapp-model")
        while True:
            try:
                message = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):  # the app is gone: nothing to answer any more
                os._exit(0)
            if message[0] == "call":
                pool.submit(self._call, module.OPS, state, *message[1:])

    def _warm(self, module, state) -> None:
        self.send(("state", {"state": "loading"}))
        t0 = time.perf_counter()
        try:
            models = module.warm(state)
        except Exception as exc:
            self.send(("state", {"state": "failed", "error": f"{exc.__class__.__name__}: {exc}"}))
        else:
            self.send(("state", {"state": "ready", "models": models, "seconds": time.perf_counter() - t0}))

    def _call(self, ops: dict, state, call_id: int, op: str, args: tuple) -> None:
        try:
            result = (True, ops[op](state, *args))
        except Exception as exc:  # re-raised in the app: by its own class where it unpickles there
            try:
                pickled = pickle.dumps(exc)
            except Exception:
                pickled = None
            result = (False, (exc.__class__.__name__, str(exc), pickled))
        self.send(("result", call_id, *result))


def main(argv: list[str]) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the app shuts the worker down (or its exit does).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = int(argv[0])
    os.set_inheritable(fd, False)  # no process this one starts keeps the app's socket open
    Worker(Connection(fd)).serve()


if __name__ == "__main__":
    main(sys.argv[1:])

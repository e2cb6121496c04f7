"""Requests released at once from many threads, for races against the live server."""

from __future__ import annotations

import threading

import requests


def concurrently(count: int, request) -> list[requests.Response]:
    """`request(session)` from `count` threads released at once: real requests on the
    live server's threads, each on its own database connection."""
    barrier = threading.Barrier(count)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def run():
        session = requests.Session()
        barrier.wait()
        response = request(session)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers

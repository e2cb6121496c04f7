"""gunicorn configuration for bench/api_load.py: the production command line's settings
(given on the command line) plus one hook that counts the SQL queries of each request in
the server and answers them in an `X-Bench-Queries` header. Used only by the bench."""

from __future__ import annotations


def post_worker_init(worker):
    from django.db import connection

    app = worker.wsgi

    def counting(environ, start_response):
        count = [0]

        def counter(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, ("X-Bench-Queries", str(count[0]))], exc_info)

        # gthread: `connection` is this request thread's; Django answers (calls start)
        # once the view has run, so the count is the view's whole.
        with connection.execute_wrapper(counter):
            return app(environ, start)

    worker.wsgi = counting

"""The `taskhub` command line: a client of the HTTP API only (it imports nothing else of
`backend`; import-linter checks it), so it works against any Taskhub server."""

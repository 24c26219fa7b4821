"""The publishing machinery: what runs `greenery report` and publishes the book.

run (one report, start to finish), chapter_runs (which chapters to execute, in parallel, cached),
chapter_process (one chapter executed by papermill), warm_server and warm_client (forks with the
libraries already imported), processes (children that are always stopped), book_stage (executed chapters
cleaned, provenance), mathsvg (formulas drawn at render time), pdf, status and notify. Chapters
never import from here; this package uses the chapter kit only to preload it.
"""

"""Run the cookbook chapters as tests: every block of every chapter is checked.

A chapter is a MyST Markdown file, ``NN-name.md``, run by sybil block after block in one
namespace, as ``docs_testing`` describes. Before its first block, the files of every earlier
chapter are written to a scratch project, a temporary folder that is the chapter's current
folder and is first on ``sys.path``: a chapter starts where the previous one ended, and passes
when run alone (``pytest cookbook/05-bus.md``). Invisible blocks reach the project as
``project``: ``project.run_pytest("tests/test_model.py")`` runs the app's tests in it.
"""

from sybil import Sybil

import docs_testing

pytest_collect_file = Sybil(
    parsers=[docs_testing.parse_blocks],
    patterns=[docs_testing.CHAPTER_PATTERN],
    document_types={".md": docs_testing.ChapterDocument},
    setup=docs_testing.open_chapter,
    teardown=docs_testing.close_chapter,
).pytest()

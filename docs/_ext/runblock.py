"""Sphinx directive ``.. runblock::``: run Python at build time, show code and output.

The tutorial's printed numbers (summaries, predictions) are then produced by
the code in this checkout on every build. Blocks of one page share a
namespace, like cells of a notebook.
"""

import contextlib
import io

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class RunBlock(SphinxDirective):
    has_content = True

    def run(self):
        code = "\n".join(self.content)
        spaces = self.env.temp_data.setdefault("runblock_namespaces", {})
        namespace = spaces.setdefault(self.env.docname, {"__name__": "__runblock__"})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"<{self.env.docname} runblock>", "exec"), namespace)
        blocks = [nodes.literal_block(code, code, language="python")]
        if out.getvalue():
            blocks.append(nodes.literal_block(out.getvalue(), out.getvalue(), language="text"))
        return blocks


def setup(app):
    app.add_directive("runblock", RunBlock)
    return {"version": "1", "parallel_read_safe": True}

"""Keep R names such as ``MASS::glmmPQL`` whole in numpydoc "See Also" sections.

napoleon reads ``MASS::glmmPQL : the R function`` as the Python name ``MASS``
followed by the text ``:glmmPQL : the R function``, so the page shows one
colon.  Quoting the R names before napoleon runs makes it render the section
as a plain "See also" box in which they appear as written.
"""

import re

_R_NAME = re.compile(r"(?<![`\w])([A-Za-z][\w.]*:::?[\w.]+)")


def _is_header(lines, i):
    nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
    return bool(lines[i].strip()) and len(nxt) >= 3 and set(nxt) == {"-"}


def _see_also_lines(lines):
    """Indices of the lines inside each "See Also" section, one list per section."""
    sections, current = [], None
    for i, line in enumerate(lines):
        if _is_header(lines, i):
            current = [] if line.strip() == "See Also" else None
            if current is not None:
                sections.append(current)
        elif current is not None and not set(line.strip()) == {"-"}:
            current.append(i)
    return sections


def quote_r_names(app, what, name, obj, options, lines):
    for section in _see_also_lines(lines):
        if not any(_R_NAME.search(lines[i]) for i in section):
            continue
        for i in section:
            line = _R_NAME.sub(r"``\1``", lines[i])
            # a line block keeps one entry per line in the plain box
            lines[i] = f"| {line}" if line.strip() and not line[0].isspace() else line


def setup(app):
    # before napoleon (priority 500), which parses the section
    app.connect("autodoc-process-docstring", quote_r_names, priority=400)
    return {"parallel_read_safe": True}

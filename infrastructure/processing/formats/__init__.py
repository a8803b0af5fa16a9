"""Office, web and e-mail documents: a parser per format (run in the limited child, yielding
blocks), the archive check they share, and their extractors (``extractors.py``)."""

# What the worker's fork server imports for these parsers before it forks any child: the
# parsers import their libraries lazily (only a parser process pays for them), and a
# child confined by Landlock could not read what an import reads late (openpyxl's
# mimetypes reads /etc/mime.types). The warm-up imports openpyxl as ``parse_xlsx`` would.
PRELOAD_MODULES = (
    "infrastructure.processing.formats.docx",
    "infrastructure.processing.formats.eml",
    "infrastructure.processing.formats.html",
    "infrastructure.processing.formats.odf",
    "infrastructure.processing.formats.pptx",
    "infrastructure.processing.formats.xlsx",
    "docx",
    "lxml.etree",
    "odf.opendocument",
    "pptx",
    "selectolax.lexbor",
)
WARM_UPS = ("infrastructure.processing.formats.xlsx:load_openpyxl",)

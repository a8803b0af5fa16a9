"""Office, web and e-mail documents: a parser per format (run in the limited child, yielding
blocks), the archive check they share, and their extractors (``extractors.py``)."""

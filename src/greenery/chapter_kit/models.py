"""What a chapter may know of the warehouse's own definitions, for the pages that describe it: the
models and data tests (the manifest) and the raw export's contract. Chapters import these from here,
so that the kit is all a chapter imports."""

from greenery.contract import RAW_TABLES
from greenery.warehouse.manifest import Manifest, load_manifest

__all__ = ["RAW_TABLES", "Manifest", "load_manifest"]

"""The API's routes: one module-level ``APIRouter`` per resource."""

"""A handler whose module cannot be imported: a dependency that is not installed."""
import sip_harness_example_dependency  # noqa: F401  (not installed anywhere)


def lambda_handler(event, context):
    return {"SchemaVersion": "1.0", "Actions": []}

"""A handler that reports what it runs in: environment, interpreter, SDK, context, logs."""
import logging
import os
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)
CONTEXT = ("aws_request_id", "function_name", "function_version", "memory_limit_in_mb",
           "invoked_function_arn", "log_group_name", "log_stream_name", "client_context")


def lambda_handler(event, context):
    kind = event.get("kind")
    if kind == "log":
        logger.info("info from %s", context.aws_request_id)
        logger.debug("a debug record stays out: the root level is INFO")
        print("a print")
        return {}
    if kind == "raise":
        raise ValueError("boom")
    import boto3
    if kind == "calls":  # one call per endpoint: the local services, the stub's API (both clients)
        boto3.client("dynamodb").list_tables()
        boto3.client("chime-sdk-voice").get_sip_media_application(SipMediaApplicationId="sma-1")
        boto3.client("chime").list_accounts()
        return {}
    session = boto3.Session()
    credentials = session.get_credentials()
    return {
        "env": dict(os.environ), "version": list(sys.version_info[:2]), "cwd": os.getcwd(),
        "sys_path": sys.path,
        "boto3": boto3.__file__, "profiles": session.available_profiles,
        "access_key": credentials.access_key if credentials else None,
        "endpoints": {name: session.client(name).meta.endpoint_url
                      for name in ("dynamodb", "chime-sdk-voice", "chime")},
        "context": {name: getattr(context, name) for name in CONTEXT},
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "remaining_ms": context.get_remaining_time_in_millis(),
        "builtins": [callable(exit), callable(quit), callable(help)],
    }

"""Spec file: client-server/keys.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("POST", "/keys/upload", auth=Auth.USER, guest=True)
async def upload_keys(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/keys/upload"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.upload(requester_of(request), body))


@route("POST", "/keys/query", auth=Auth.USER, guest=True)
async def query_keys(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/keys/query"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.query(requester_of(request), body))


@route("POST", "/keys/claim", auth=Auth.USER, guest=True)
async def claim_keys(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/keys/claim"""
    body = await read_json_object(request)
    return json_response(await services_of(request).e2e_keys.claim(requester_of(request), body))


@route("GET", "/keys/changes", auth=Auth.USER)
async def get_keys_changes(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/keys/changes"""
    q = request.query
    if "from" not in q or "to" not in q:
        raise MatrixError(400, Codes.MISSING_PARAM, "'from' and 'to' are required")
    return json_response(await services_of(request).sync.key_changes(requester_of(request), q["from"], q["to"]))

"""Spec file: client-server/key_backup.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("POST", "/room_keys/version", auth=Auth.USER)
async def post_room_keys_version(request: web.Request) -> web.Response:
    """POST /_matrix/client/v3/room_keys/version"""
    backup = services_of(request).key_backup
    return json_response(await backup.create_version(requester_of(request), await read_json_object(request)))


@route("GET", "/room_keys/version", auth=Auth.USER)
async def get_room_keys_version_current(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/room_keys/version"""
    backup = services_of(request).key_backup
    return json_response(await backup.get_version(requester_of(request), None))


@route("GET", "/room_keys/version/{version}", auth=Auth.USER)
async def get_room_keys_version(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/room_keys/version/{version}"""
    backup = services_of(request).key_backup
    return json_response(await backup.get_version(requester_of(request), request.match_info["version"]))


@route("PUT", "/room_keys/version/{version}", auth=Auth.USER)
async def put_room_keys_version(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/room_keys/version/{version}"""
    backup = services_of(request).key_backup
    await backup.update_version(requester_of(request), request.match_info["version"], await read_json_object(request))
    return json_response({})


@route("DELETE", "/room_keys/version/{version}", auth=Auth.USER)
async def delete_room_keys_version(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/room_keys/version/{version}"""
    backup = services_of(request).key_backup
    await backup.delete_version(requester_of(request), request.match_info["version"])
    return json_response({})


@route("PUT", "/room_keys/keys/{roomId}/{sessionId}", auth=Auth.USER)
async def put_room_key_by_session_id(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"""
    m = request.match_info
    version = request.query.get("version")
    body = await read_json_object(request)
    backup = services_of(request).key_backup
    rooms = {m["roomId"]: {"sessions": {m["sessionId"]: body}}}
    return json_response(await backup.put_keys(requester_of(request), version, rooms))


@route("GET", "/room_keys/keys/{roomId}/{sessionId}", auth=Auth.USER)
async def get_room_key_by_session_id(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"""
    m = request.match_info
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.get_keys(requester_of(request), version, m["roomId"], m["sessionId"]))


@route("DELETE", "/room_keys/keys/{roomId}/{sessionId}", auth=Auth.USER)
async def delete_room_key_by_session_id(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"""
    m = request.match_info
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.delete_keys(requester_of(request), version, m["roomId"], m["sessionId"]))


@route("PUT", "/room_keys/keys/{roomId}", auth=Auth.USER)
async def put_room_keys_by_room_id(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/room_keys/keys/{roomId}"""
    m = request.match_info
    version = request.query.get("version")
    body = await read_json_object(request)
    backup = services_of(request).key_backup
    return json_response(await backup.put_keys(requester_of(request), version, {m["roomId"]: body}))


@route("GET", "/room_keys/keys/{roomId}", auth=Auth.USER)
async def get_room_keys_by_room_id(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/room_keys/keys/{roomId}"""
    m = request.match_info
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.get_keys(requester_of(request), version, m["roomId"]))


@route("DELETE", "/room_keys/keys/{roomId}", auth=Auth.USER)
async def delete_room_keys_by_room_id(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/room_keys/keys/{roomId}"""
    m = request.match_info
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.delete_keys(requester_of(request), version, m["roomId"]))


@route("PUT", "/room_keys/keys", auth=Auth.USER)
async def put_room_keys(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/room_keys/keys"""
    version = request.query.get("version")
    body = await read_json_object(request)
    backup = services_of(request).key_backup
    return json_response(await backup.put_keys(requester_of(request), version, body.get("rooms")))


@route("GET", "/room_keys/keys", auth=Auth.USER)
async def get_room_keys(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/room_keys/keys"""
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.get_keys(requester_of(request), version))


@route("DELETE", "/room_keys/keys", auth=Auth.USER)
async def delete_room_keys(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/room_keys/keys"""
    version = request.query.get("version")
    backup = services_of(request).key_backup
    return json_response(await backup.delete_keys(requester_of(request), version))

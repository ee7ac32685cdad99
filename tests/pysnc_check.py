#!/usr/bin/env python3
"""Points ServiceNow's own Python client, pysnc, at the ServiceNow simulator.

pysnc is written against real instances, so every query it makes and every answer it
parses here is evidence that the simulator speaks the Table API the way an instance does:
parameters (sysparm_display_value=all, sysparm_exclude_reference_link, offset/limit
paging, the ORDERBYsys_id it always appends), value shapes, X-Total-Count, the
single-record route and the error bodies.

(e) pysnc's OAuth password grant (ServiceNowPasswordGrantFlow, through requests-oauthlib)
gets a token from /oauth_token.do and queries with it as a Bearer token; a wrong client
secret is refused the way an instance refuses it.

Usage: pysnc_check.py URL CA_PEM USER PASSWORD CLIENT_ID CLIENT_SECRET
(tests/pysnc_check.sh runs it)
Exit status 0 only when every check passed.
"""

import os
import sys
import urllib.parse

import pysnc
from pysnc.exceptions import AuthenticationException, RequestException

# The default fixture of testkit/src/servicenow.rs.
ALICE = "a11ce000000000000000000000000001"
BOB = "b0b00000000000000000000000000002"
CAROL = "ca201000000000000000000000000003"
ALL_INCIDENTS = ["INC0010001", "INC0010002", "INC0010003", "INC0010004", "INC0010005"]
ALL_CHANGES = ["CHG00300%02d" % n for n in range(1, 8)]

passed = 0
failed = 0


def check(name, actual, expected):
    global passed, failed
    if actual == expected:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: got {actual!r}, expected {expected!r}")


def numbers(gr):
    return [record.get_value("number") for record in gr]


def main():
    url, ca, user, password, client_id, client_secret = sys.argv[1:7]
    # pysnc sends each request through requests' merge_environment_settings with
    # verify=None, so these variables would silently replace verify=ca.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(variable, None)
    client = pysnc.ServiceNowClient(url, (user, password), verify=ca)

    # Every request pysnc sends, as (path, {param: value}), to check what it asks for.
    sent = []

    def record_request(response, *args, **kwargs):
        parts = urllib.parse.urlsplit(response.request.url)
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        sent.append((parts.path, params, response))

    client.session.hooks["response"].append(record_request)

    # (a) One incident by number: stored and display values, references.
    gr = client.GlideRecord("incident")
    gr.add_query("number", "INC0010001")
    gr.query()
    check("a: one incident found", gr.get_row_count(), 1)
    check("a: next()", gr.next(), True)
    check("a: number", gr.get_value("number"), "INC0010001")
    check("a: state value", gr.get_value("state"), "2")
    check("a: state display value", gr.get_display_value("state"), "In Progress")
    check("a: caller_id value", gr.get_value("caller_id"), ALICE)
    check("a: caller_id display value", gr.get_display_value("caller_id"), "Alice Anders")
    check("a: opened_by display value", gr.opened_by.get_display_value(), "Carol Chen")
    check("a: reference link excluded (pysnc default)", gr.caller_id.get_link(), None)
    check("a: only one record", gr.next(), False)
    path, params, _ = sent[-1]
    check("a: path", path, "/api/now/table/incident")
    check("a: sysparm_query", params.get("sysparm_query"), "number=INC0010001^ORDERBYsys_id")
    check("a: sysparm_display_value", params.get("sysparm_display_value"), "all")
    check("a: sysparm_exclude_reference_link", params.get("sysparm_exclude_reference_link"), "true")
    check("a: sysparm_suppress_pagination_header",
          params.get("sysparm_suppress_pagination_header"), "true")
    check("a: sysparm_offset", params.get("sysparm_offset"), "0")
    check("a: sysparm_limit (default batch size)", params.get("sysparm_limit"), "100")

    # GlideRecord.get(field, value) and get(sys_id), the single-record route.
    gr = client.GlideRecord("incident")
    check("a: get(number)", gr.get("number", "INC0010003"), True)
    check("a: get(number) caller", gr.caller_id.get_display_value(), "Bob Baker")
    sys_id = gr.get_value("sys_id")
    gr = client.GlideRecord("incident")
    check("a: get(sys_id)", gr.get(sys_id), True)
    check("a: get(sys_id) number", gr.get_value("number"), "INC0010003")
    check("a: get(sys_id) path", sent[-1][0], f"/api/now/table/incident/{sys_id}")
    gr = client.GlideRecord("incident")
    check("a: get(unknown sys_id) is False", gr.get("f" * 32), False)

    # Field limits, including a dot-walk that pysnc resolves from the flat key.
    gr = client.GlideRecord("incident")
    gr.fields = "number,caller_id,caller_id.user_name"
    gr.add_query("number", "INC0010001")
    gr.query()
    gr.next()
    check("a: sysparm_fields adds sys_id", sent[-1][1].get("sysparm_fields"),
          "sys_id,number,caller_id,caller_id.user_name")
    check("a: dot-walked field", gr.caller_id.user_name.get_value(), "alice")
    check("a: fields limited", sorted(gr.serialize().keys()),
          ["caller_id", "caller_id.user_name", "number", "sys_id"])

    # display_value=False / True as pysnc sends them.
    gr = client.GlideRecord("incident")
    gr.display_value = False
    gr.add_query("number", "INC0010001")
    gr.query()
    gr.next()
    check("a: display_value=false state", gr.get_value("state"), "2")
    check("a: display_value=false caller", gr.get_value("caller_id"), ALICE)
    gr = client.GlideRecord("incident")
    gr.display_value = True
    gr.add_query("number", "INC0010001")
    gr.query()
    gr.next()
    check("a: display_value=true state", gr.get_value("state"), "In Progress")
    check("a: display_value=true caller", gr.get_value("caller_id"), "Alice Anders")

    # (b) add_query with an OR condition, add_encoded_query with ^OR and ^NQ.
    gr = client.GlideRecord("incident")
    condition = gr.add_query("state", "1")
    condition.add_or_condition("state", "3")
    gr.query()
    check("b: add_or_condition", numbers(gr), ["INC0010003", "INC0010005"])
    check("b: add_or_condition query", sent[-1][1].get("sysparm_query"),
          "state=1^ORstate=3^ORDERBYsys_id")

    gr = client.GlideRecord("incident")
    gr.add_query("caller_id", ALICE)
    gr.add_encoded_query("state=7^ORstate=8")
    gr.query()
    check("b: ^OR binds tighter than ^", numbers(gr), ["INC0010002", "INC0010004"])

    gr = client.GlideRecord("incident")
    gr.add_encoded_query("number=INC0010001^NQnumberISNOTEMPTY")
    gr.query()
    check("b: ^NQ widens to every incident", numbers(gr), ALL_INCIDENTS)

    gr = client.GlideRecord("incident")
    gr.add_query("caller_id.user_name", "bob")
    gr.query()
    check("b: dot-walked condition", numbers(gr), ["INC0010003"])

    gr = client.GlideRecord("incident")
    gr.add_query("u_no_such_field", "x")
    gr.add_query("number", "INC0010005")
    gr.query()
    check("b: unknown field dropped", numbers(gr), ["INC0010005"])

    gr = client.GlideRecord("incident")
    gr.add_query("number", "INC9999999")
    gr.query()
    check("b: no match is an empty result", (gr.get_row_count(), gr.next()), (0, False))

    gr = client.GlideRecord("change_request")
    gr.add_null_query("start_date")
    gr.query()
    check("b: add_null_query", numbers(gr), ["CHG0030006"])

    gr = client.GlideRecord("change_request")
    gr.add_query("approval", "!=", "approved")
    gr.query()
    check("b: add_query with operator", numbers(gr), ["CHG0030002"])

    # (c) Paging through change_request: batch_size forces several GETs.
    first_change_request = len(sent)
    gr = client.GlideRecord("change_request", batch_size=2)
    gr.query()
    rows = [(r.get_value("number"), r.get_display_value("approval"), r.get_value("requested_by"))
            for r in gr]
    check("c: every change, in sys_id order", [row[0] for row in rows], ALL_CHANGES)
    check("c: approval display values", rows[1][1], "Requested")
    check("c: requested_by", [row[2] for row in rows].count(BOB), 1)
    pages = [params for (_, params, _) in sent[first_change_request:]]
    check("c: offsets", [p.get("sysparm_offset") for p in pages], ["0", "2", "4", "6"])
    check("c: limits", {p.get("sysparm_limit") for p in pages}, {"2"})
    check("c: X-Total-Count",
          {resp.headers.get("X-Total-Count") for (_, _, resp) in sent[first_change_request:]},
          {"7"})

    # A limit below the batch size is sent as sysparm_limit. (With a limit above the batch
    # size pysnc 1.2.1 may overshoot by one page remainder: its own arithmetic, not ours.)
    first_limited = len(sent)
    gr = client.GlideRecord("change_request")
    gr.limit = 3
    gr.order_by_desc("number")
    gr.query()
    check("c: limit 3, ORDERBYDESC", numbers(gr), list(reversed(ALL_CHANGES))[:3])
    limited = [params for (_, params, _) in sent[first_limited:]]
    check("c: one GET for the limited query", len(limited), 1)
    check("c: limited query string", limited[0].get("sysparm_query"), "ORDERBYDESCnumber")
    check("c: sysparm_limit", limited[0].get("sysparm_limit"), "3")

    gr = client.GlideRecord("change_request")
    gr.add_query("number", "CHG0030001")
    gr.query()
    gr.next()
    start = gr.start_date
    check("c: start_date value is UTC YYYY-MM-DD HH:MM:SS", len(start.get_value()), 19)
    check("c: start_date display value is in the user's zone",
          start.get_value() != start.get_display_value(), True)
    check("c: state display", gr.get_display_value("state"), "Implement")

    # (d) Errors arrive as pysnc's own exceptions.
    bad = pysnc.ServiceNowClient(url, (user, password + "x"), verify=ca)
    try:
        bad_gr = bad.GlideRecord("incident")
        bad_gr.query()
        check("d: wrong password raises", "no exception", "AuthenticationException")
    except AuthenticationException as error:
        check("d: wrong password raises", "User Not Authenticated" in str(error), True)
    try:
        client.GlideRecord("u_no_such_table").query()
        check("d: unknown table raises", "no exception", "RequestException")
    except RequestException as error:
        check("d: unknown table raises", "Invalid table u_no_such_table" in str(error), True)

    # (e) OAuth 2.0 password grant, as pysnc does it.
    from pysnc.auth import ServiceNowPasswordGrantFlow

    flow = ServiceNowPasswordGrantFlow(user, password, client_id, client_secret)
    oauth_client = pysnc.ServiceNowClient(url, flow, verify=ca)
    oauth_sent = []

    def record_oauth(response, *args, **kwargs):
        oauth_sent.append((urllib.parse.urlsplit(response.request.url).path,
                           response.request.headers.get("Authorization", "")))
    oauth_client.session.hooks["response"].append(record_oauth)
    token = oauth_client.session.token
    check("e: token_type Bearer", token.get("token_type"), "Bearer")
    check("e: expires_in as ServiceNow gives it", token.get("expires_in"), 1799)
    check("e: a refresh token with the password grant", bool(token.get("refresh_token")), True)
    gr = oauth_client.GlideRecord("incident")
    gr.add_query("number", "INC0010001")
    gr.query()
    check("e: query with the token finds the incident", numbers(gr), ["INC0010001"])
    check("e: the query went with a Bearer token",
          [auth.split(" ")[0] for path, auth in oauth_sent if path.startswith("/api/now/")][:1],
          ["Bearer"])
    wrong = ServiceNowPasswordGrantFlow(user, password, client_id, client_secret + "x")
    try:
        pysnc.ServiceNowClient(url, wrong, verify=ca).GlideRecord("incident").query()
        check("e: wrong client secret is refused", "no exception", "an OAuth error")
    except Exception as error:  # oauthlib raises its own error types, at sign-in
        check("e: wrong client secret is refused as server_error/access_denied",
              (type(error).__name__, "access_denied" in str(error)), ("ServerError", True))

    print(f"pysnc {pysnc.__version__}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

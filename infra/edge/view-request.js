// skypi's view rules as a CloudFront Function (cloudfront-js-2.0, viewer request), on /view/*
// only: common.js, then this part (infra/cdn.py). The same rules as skypi.core.viewedge
// (decide_view, then view_origin_key), tested against the same vectors.
//
// /view/<name>[@<date>]/<inner> is read as /<inner> is read from the index, by common.js's
// read, run on the inner path (so names, slashes, ?format=, Accept, gzip, decoding and tokens
// follow the one rule), and then moved under the view: a project's page to the view's stored
// page, a cached upstream file (/files/<project>/<file>) to the view's copy, a private file
// (/packages/...) as it is. Answers a view makes for each request (its root listing, a
// time-pinned page) go under VIEW_KEYS.made, where no object is ever stored: the bucket misses
// and the origin group fails over to the view Lambda, as for any page not stored yet.
//
// This function never picks an origin (no cf.selectRequestOriginById): a request that names
// one skips the behaviour's origin group, and with it the failover to the view Lambda.

var VIEW_PREFIX = __VIEW_PREFIX__;
// skypi.core.keys: views (each view's objects under views/<name>/), files (a view's cached
// upstream files, under its folder), made (the answers made for each request).
var VIEW_KEYS = __VIEW_KEYS__;
var VIEW_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
var MAX_VIEW_NAME = 64;
var PIN = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

// A checked read goes to the origin group as `key`, spelled one way (CloudFront's cache key).
function toBucket(request, key) {
    request.uri = '/' + key.split('/').map(encodeSegment).join('/');
    return request;
}

// skypi.core.viewedge.valid_pin: a day of the calendar, years 1 to 9999.
function validPin(pin) {
    var day = new Date(pin + 'T00:00:00Z');
    return PIN.test(pin) && pin.slice(0, 4) !== '0000' && !isNaN(day.getTime()) &&
        day.toISOString().slice(0, 10) === pin;
}

// The answer of a read of the index's own objects is refused (a 404) for a view when a token
// limited to projects could not read a path that names none (skypi.core.edge: project '').
async function nothing(request) {
    return (READ_MODE === 'private' && await denied(request, '')) || notFound();
}

// Where the inner read went (a key of the index), as the view's: null for what a view has not.
function viewKey(view, pin, inner, key) {
    if (key.indexOf(KEYS.packages) === 0 && inner.indexOf('/files/') !== 0) return key;
    if (key.indexOf(KEYS.packages) === 0) {
        var parts = key.slice(KEYS.packages.length).split('/');
        if (parts.length !== 2 || parts[0] !== projectOfFilename(parts[1])) return null;
        return VIEW_KEYS.views + view + '/' + VIEW_KEYS.files + '/' + parts.join('/');
    }
    if (inner.indexOf('/simple/') !== 0 || key.indexOf(KEYS.pages) !== 0) return null;
    var root = key.slice(KEYS.pages.length).indexOf('/') === -1;
    if (root) return VIEW_KEYS.made + view + '/' + key;
    return pin ? VIEW_KEYS.made + view + '@' + pin + '/' + key : VIEW_KEYS.views + view + '/' + key;
}

async function handler(event) {
    var request = event.request;
    var several = severalAuthorizations(request);
    if (several) return several;
    var rest = request.uri.slice(VIEW_PREFIX.length);
    var slash = rest.indexOf('/');
    var segment = slash === -1 ? rest : rest.slice(0, slash);
    var inner = slash === -1 ? '' : rest.slice(slash + 1);
    var at = segment.indexOf('@');
    var view = at === -1 ? segment : segment.slice(0, at);
    var pin = at === -1 ? '' : segment.slice(at + 1);
    if (view.length > MAX_VIEW_NAME || !VIEW_NAME.test(view) || (at !== -1 && !validPin(pin))) {
        return nothing(request);
    }
    var base = VIEW_PREFIX + segment;
    if (inner === '' || inner === 'simple') {
        var refusal = READ_MODE === 'private' && await denied(request, null);
        return refusal || respond(301, 'Moved Permanently', { location: base + '/simple/' });
    }
    inner = '/' + inner;
    // The API's paths and what is no read are no view's; a file is /packages/'s rules.
    var files = inner.indexOf('/files/') === 0;
    var path = files ? '/packages/' + inner.slice('/files/'.length) : inner;
    if (route(request.method, path) !== 'read') return nothing(request);
    request.uri = path;
    var answer = await read(request, path);
    if (answer.statusCode === 301 || answer.statusCode === 302) {
        answer.headers.location.value = base + answer.headers.location.value;
    }
    if (answer.statusCode) return answer;
    var key = viewKey(view, pin, inner, decodeURIComponent(answer.uri.slice(1)));
    if (key === null) return files ? notFound() : nothing(request);
    return toBucket(answer, key);
}

// skypi's edge rules as a CloudFront Function (cloudfront-js-2.0, viewer request).
//
// The same rules as skypi.core.edge / skypi.core.negotiate, tested against the same vectors
// (spec/edge-vectors.json): normalize and redirect project names, add the trailing slash, pick
// the page representation from ?format= or Accept (reference/standards.md 2.4), map it to its
// stored object (its gzip variant when Accept-Encoding takes gzip: CloudFront does not compress
// the PEP 691 types itself), and refuse what is no read. Upload requests bigger than API Gateway and
// Lambda can carry are answered here with the way that works. In private mode, reads need a
// token: its SHA-256 is looked up in the CloudFront KeyValueStore the token table is mirrored
// to. The __PLACEHOLDERS__ are filled in at synth time (infra/cdn.py).

import cf from 'cloudfront';
import crypto from 'crypto';

var MAX_UPLOAD_REQUEST_BYTES = __MAX_UPLOAD_REQUEST_BYTES__;
var READ_MODE = '__READ_MODE__';
var KVS_ID = '__KVS_ID__';
var HTML = 'text/html';
var V1_HTML = 'application/vnd.pypi.simple.v1+html';
var V1_JSON = 'application/vnd.pypi.simple.v1+json';
var OFFERS = [HTML, V1_HTML, V1_JSON]; // ties go to the earlier offer
var OBJECT = {};
OBJECT[HTML] = 'index.html';
OBJECT[V1_HTML] = 'index.v1html';
OBJECT[V1_JSON] = 'index.json';
var LATEST = {
    'application/vnd.pypi.simple.latest+html': V1_HTML,
    'application/vnd.pypi.simple.latest+json': V1_JSON
};
var VALID_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;
var Q_VALUE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
var API_PREFIXES = ['/legacy', '/api/', '/health', '/_/oidc/', '/integrity/'];
var SDIST_EXTENSIONS = ['.tar.gz', '.zip', '.tar.bz2', '.tgz'];
var BASE64 = /^[A-Za-z0-9+\/]*={0,2}$/;
var kvs = null;

function unquote(text) {
    try {
        return decodeURIComponent(text);
    } catch (e) {
        return text; // as Python's unquote: leave a malformed escape alone
    }
}

function canonical(media) {
    media = media.trim().toLowerCase();
    return LATEST[media] || media;
}

function parseAccept(header) {
    var ranges = [];
    var items = header.split(',');
    for (var i = 0; i < items.length; i++) {
        if (!items[i].trim()) continue;
        var params = items[i].split(';');
        var media = canonical(params[0]);
        if (media.split('/').length !== 2 || media.indexOf(' ') !== -1) return null;
        var q = 1;
        for (var j = 1; j < params.length; j++) {
            var param = params[j].trim();
            var eq = param.indexOf('=');
            var key = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
            if (key !== 'q') continue;
            var value = (eq === -1 ? '' : param.slice(eq + 1)).trim();
            if (!Q_VALUE.test(value)) return null;
            q = Number(value);
            if (!(q >= 0 && q <= 1)) return null;
        }
        ranges.push([media, q]);
    }
    return ranges;
}

function quality(offer, ranges) {
    var kind = offer.split('/')[0];
    var best = null;
    for (var i = 0; i < ranges.length; i++) {
        var media = ranges[i][0];
        var rank = media === offer ? 3 : media === kind + '/*' ? 2 : media === '*/*' ? 1 : 0;
        if (rank && (best === null || rank > best[0])) best = [rank, ranges[i][1]];
    }
    return best === null ? null : best[1];
}

function formatParam(querystring) {
    var format = querystring && querystring.format;
    if (!format || format.value === undefined) return null;
    var chosen = canonical(unquote(format.value).replace(/ /g, '+'));
    return OFFERS.indexOf(chosen) !== -1 ? chosen : null;
}

function chooseContentType(accept, querystring) {
    var forced = formatParam(querystring);
    if (forced) return forced;
    var ranges = accept && accept.trim() ? parseAccept(accept) : null;
    if (!ranges || !ranges.length) return HTML;
    var best = null;
    for (var i = 0; i < OFFERS.length; i++) {
        var q = quality(OFFERS[i], ranges);
        if (q !== null && q > 0 && (best === null || q > best[0])) best = [q, OFFERS[i]];
    }
    return best ? best[1] : HTML;
}

function rawQuery(querystring) {
    var parts = [];
    for (var name in querystring) {
        var entry = querystring[name];
        var values = entry.multiValue ? entry.multiValue : [entry];
        for (var i = 0; i < values.length; i++) parts.push(name + '=' + values[i].value);
    }
    return parts.join('&');
}

function respond(status, description, headers, body) {
    var response = { statusCode: status, statusDescription: description, headers: {} };
    for (var name in headers) response.headers[name] = { value: headers[name] };
    if (body) response.body = { encoding: 'text', data: body };
    return response;
}

function redirect(location, querystring) {
    var query = rawQuery(querystring);
    return respond(301, 'Moved Permanently', {
        location: query ? location + '?' + query : location,
        vary: 'Accept'
    });
}

function notFound() {
    return respond(404, 'Not Found', { 'content-type': 'text/plain' }, 'Not Found\n');
}

function normalize(name) {
    return name.toLowerCase().replace(/[-_.]+/g, '-');
}

// The project a read is about (skypi.core.edge.read_project): null for the root listing,
// '' when the path names none.
function projectOfFilename(filename) {
    filename = filename.replace(/\.metadata$/, '');
    var name = '';
    if (/\.whl$/.test(filename)) {
        name = filename.split('-')[0];
    } else {
        for (var i = 0; i < SDIST_EXTENSIONS.length; i++) {
            var ext = SDIST_EXTENSIONS[i];
            if (filename.slice(-ext.length) === ext) {
                var stem = filename.slice(0, -ext.length);
                name = stem.indexOf('-') === -1 ? '' : stem.slice(0, stem.lastIndexOf('-'));
                break;
            }
        }
    }
    return VALID_NAME.test(name) ? normalize(name) : '';
}

function readProject(path) {
    if (path === '/simple' || path === '/simple/' || path === '/') return null;
    var named = /^\/(simple|project)\//.exec(path);
    if (named) {
        var name = unquote(path.slice(named[0].length).replace(/\/+$/, ''));
        return VALID_NAME.test(name) ? normalize(name) : '';
    }
    return projectOfFilename(unquote(path.slice(path.lastIndexOf('/') + 1)));
}

// The token in a Basic header (skypi.core.tokens.credentials_from_header).
function tokenFromHeader(header) {
    if (!header) return null;
    var trimmed = header.trim();
    var space = trimmed.indexOf(' ');
    var scheme = space === -1 ? trimmed : trimmed.slice(0, space);
    var value = space === -1 ? '' : trimmed.slice(space + 1).trim();
    if (scheme.toLowerCase() !== 'basic' || !value) return null;
    if (!BASE64.test(value) || value.length % 4 !== 0) return null;
    var decoded = Buffer.from(value, 'base64').toString('utf8');
    var colon = decoded.indexOf(':');
    if (colon === -1) return null;
    return decoded.slice(colon + 1) || decoded.slice(0, colon) || null;
}

async function lookup(hash) {
    if (kvs === null) kvs = cf.kvs(KVS_ID);
    try {
        return JSON.parse(await kvs.get(hash));
    } catch (e) {
        return null; // not there: unknown or revoked
    }
}

// null when the request may read; else the 401/403 to answer.
async function denied(request, project) {
    var header = request.headers.authorization ? request.headers.authorization.value : '';
    var token = tokenFromHeader(header);
    if (!token) {
        return respond(401, 'Unauthorized',
            { 'www-authenticate': 'Basic realm="skypi"', 'content-type': 'text/plain' },
            'Authentication required: send a skypi token as the password (username __token__).\n');
    }
    var entry = await lookup(crypto.createHash('sha256').update(token).digest('hex'));
    var why = null;
    if (entry === null) why = 'Invalid or revoked token.';
    else if (entry.e !== null && entry.e * 1000 <= Date.now()) why = 'Expired token.';
    else if (entry.p !== null && project !== null && entry.p.indexOf(project) === -1) {
        why = 'The given token isn\'t allowed to read for project \'' + project + '\'.';
    }
    return why ? respond(403, 'Forbidden', { 'content-type': 'text/plain' }, why + '\n') : null;
}

// skypi.core.http.accepts_gzip: the first gzip entry decides, else '*'; a bad q is 0.
function acceptsGzip(header) {
    var star = false;
    var items = header.toLowerCase().split(',');
    for (var i = 0; i < items.length; i++) {
        var parts = items[i].split(';');
        var coding = parts[0].trim();
        var q = 1;
        for (var j = 1; j < parts.length; j++) {
            var param = parts[j].trim();
            if (param.slice(0, 2) === 'q=') q = Q_VALUE.test(param.slice(2)) ? Number(param.slice(2)) : 0;
        }
        if (coding === 'gzip' || coding === 'x-gzip') return q > 0;
        if (coding === '*') star = q > 0;
    }
    return star;
}

function page(request, prefix) {
    var accept = request.headers.accept ? request.headers.accept.value : null;
    var encoding = request.headers['accept-encoding'];
    request.uri = prefix + OBJECT[chooseContentType(accept, request.querystring)] +
        (encoding && acceptsGzip(encoding.value) ? '.gz' : '');
    return request;
}

function apiRequest(request) {
    var length = request.headers['content-length'];
    if (request.method !== 'POST' || request.uri.indexOf('/legacy') !== 0) return request;
    // A chunked body has no length to check here, and API Gateway answers an oversized one
    // with an opaque error: uploads must declare their length (twine and uv publish do).
    if (!length || !/^[0-9]+$/.test(length.value)) {
        return respond(411, 'Length Required', { 'content-type': 'text/plain' },
            'Uploads must send Content-Length (twine and uv publish do).\n');
    }
    if (Number(length.value) > MAX_UPLOAD_REQUEST_BYTES) {
        return respond(413, 'Payload Too Large', { 'content-type': 'text/plain' },
            'Upload too large for this endpoint: the request is ' + length.value +
            ' bytes and uploads through API Gateway and Lambda are capped at ' +
            MAX_UPLOAD_REQUEST_BYTES + ' bytes by AWS Lambda\'s 6 MB payload limit. ' +
            'Publish larger files straight to storage with `skypi publish FILE` (up to 8.9 GB, ' +
            'resumable), or `aws s3 cp FILE s3://<bucket>/packages/<project>/` ' +
            '(the index lists them within seconds).\n');
    }
    return request;
}

async function handler(event) {
    var request = event.request;
    var path = request.uri;
    for (var i = 0; i < API_PREFIXES.length; i++) {
        if (path.indexOf(API_PREFIXES[i]) === 0) return apiRequest(request);
    }
    var people = path === '/' || path.indexOf('/project/') === 0; // skypi.core.site
    var isRead = people || path === '/simple' || path.indexOf('/simple/') === 0 ||
        path.indexOf('/packages/') === 0;
    if (!isRead) return notFound();
    if (request.method !== 'GET' && request.method !== 'HEAD') {
        return respond(405, 'Method Not Allowed', { allow: 'GET, HEAD' }, 'Method Not Allowed\n');
    }
    if (READ_MODE === 'private') {
        var refusal = await denied(request, readProject(path));
        if (refusal) return refusal;
    }
    if (path === '/simple') return redirect('/simple/', request.querystring);
    if (path.indexOf('/packages/') === 0) {
        var parts = unquote(path.slice('/packages/'.length)).split('/');
        for (var p = 0; p < parts.length; p++) {
            if (!parts[p] || parts[p].charAt(0) === '.') return notFound();
        }
        return request; // the key is the path itself
    }
    if (path === '/') {
        request.uri = '/site/index.html';
        return request;
    }
    var prefix = people ? '/project/' : '/simple/';
    var rest = path.slice(prefix.length);
    if (rest === '' && !people) return page(request, '/simple/');
    var slash = rest.charAt(rest.length - 1) === '/';
    var name = unquote(slash ? rest.slice(0, -1) : rest);
    if (name.indexOf('/') !== -1 || !VALID_NAME.test(name)) return notFound();
    var normalized = normalize(name);
    if (name !== normalized || !slash) {
        return redirect(prefix + normalized + '/', request.querystring);
    }
    if (people) {
        request.uri = '/site/project/' + normalized + '/index.html';
        return request;
    }
    return page(request, '/simple/' + normalized + '/');
}

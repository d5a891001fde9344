// skypi's edge rules, the part both CloudFront Functions share (cloudfront-js-2.0, viewer
// request): the main one (viewer-request.js, every behaviour but /view/*) and the views' own
// (view-request.js, /view/*). infra/cdn.py puts this part first in each function's code, so a
// rule written here is the same in both; each part defines what differs: toBucket (where a
// checked read goes) and handler.
//
// The same rules as skypi.core.edge / skypi.core.negotiate, tested against the same vectors
// (spec/edge-vectors.json): normalize and redirect project names, add the trailing slash, pick
// the page representation from ?format= or Accept, map it to its
// stored object (its gzip variant when Accept-Encoding takes gzip: CloudFront does not compress
// the PEP 691 types itself), and refuse what is no read. As there: route by the raw path, decode it once,
// strictly, then decide everything (the project, the key) on the decoded path. In
// private mode, reads need a token: its SHA-256 is looked up in the CloudFront KeyValueStore
// the token table is mirrored to. The __PLACEHOLDERS__ are filled in, and the code minified,
// at synth time (infra/cdn.py): comments cost nothing against the 10 KB quota.

import cf from 'cloudfront';
import crypto from 'crypto';

var READ_MODE = '__READ_MODE__';
var KVS_ID = '__KVS_ID__';
var HTML = 'text/html';
var V1_HTML = 'application/vnd.pypi.simple.v1+html';
var V1_JSON = 'application/vnd.pypi.simple.v1+json';
var OFFERS = [HTML, V1_HTML, V1_JSON]; // ties go to the earlier offer
// Where each read is stored: skypi.core.keys's layout, filled in at synth (infra/cdn.py):
// packages, pages (the index pages' prefix), the page objects by kind, the gzip suffix, the
// landing page, site (a project's page for people is site + name + '/' + page).
var KEYS = __KEYS__;
var OBJECT = {};
OBJECT[HTML] = KEYS.objects.html;
OBJECT[V1_HTML] = KEYS.objects.v1html;
OBJECT[V1_JSON] = KEYS.objects.json;
var LATEST = {
    'application/vnd.pypi.simple.latest+html': V1_HTML,
    'application/vnd.pypi.simple.latest+json': V1_JSON
};
var VALID_NAME = /^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$/;
var Q_VALUE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// What may reach the API and what may reach the bucket: skypi.core.constants's table, filled in
// at synth (uploads, /health, /api/, Trusted Publishing, PEP 740; POST / as pypiserver takes
// uploads). infra/cdn.py sends the READ_PREFIXES to the bucket and everything else to the API;
// a read at one of the READ_PATHS (the landing page, '/') is switched to the bucket by toBucket.
var API_PATHS = __API_PATHS__;
var API_PREFIXES = __API_PREFIXES__; // the API checks what it needs
var API_POSTS = __API_POSTS__;
var READ_PATHS = __READ_PATHS__;
var READ_PREFIXES = __READ_PREFIXES__;
var SDIST_EXTENSIONS = __SDIST_EXTENSIONS__;
var BASE64 = /^[A-Za-z0-9+\/]*={0,2}$/;
var OWS = /^[ \t]+|[ \t]+$/g; // HTTP's optional whitespace, not trim()'s
var kvs = null;

function strip(text) {
    return text.replace(OWS, '');
}

function startsWithAny(text, prefixes) {
    for (var i = 0; i < prefixes.length; i++) if (text.indexOf(prefixes[i]) === 0) return true;
    return false;
}

function route(method, path) {
    if (API_PATHS.indexOf(path) !== -1 || startsWithAny(path, API_PREFIXES) ||
        (method === 'POST' && API_POSTS.indexOf(path) !== -1)) return 'api';
    if (READ_PATHS.indexOf(path) !== -1 || startsWithAny(path, READ_PREFIXES)) return 'read';
    return 'none';
}

// decodeURIComponent, or null: it throws on a malformed escape or bytes that are not UTF-8.
function unquote(text) {
    if (/[^\x00-\x7f]/.test(text) || /%(?![0-9A-Fa-f]{2})/.test(text)) return null;
    try {
        return decodeURIComponent(text);
    } catch (e) {
        return null;
    }
}

// skypi.core.edge.decode_path: null for a 400.
function decodePath(path) {
    if (!/^[!-~]*$/.test(path)) return null;
    var text = unquote(path);
    return text === null || /[\x00-\x1f\x7f-\x9f%\\]/.test(text) ? null : text;
}

function canonical(media) {
    media = strip(media);
    if (!/[^\x00-\x7f]/.test(media)) media = media.toLowerCase();
    return LATEST[media] || media;
}

function parseAccept(header) {
    var ranges = [];
    var items = header.split(',');
    for (var i = 0; i < items.length; i++) {
        if (!strip(items[i])) continue;
        var params = items[i].split(';');
        var media = canonical(params[0]);
        if (media.split('/').length !== 2 || media.indexOf(' ') !== -1) return null;
        var q = 1;
        for (var j = 1; j < params.length; j++) {
            var param = strip(params[j]);
            var eq = param.indexOf('=');
            var key = strip(eq === -1 ? param : param.slice(0, eq)).toLowerCase();
            if (key !== 'q') continue;
            var value = strip(eq === -1 ? '' : param.slice(eq + 1));
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
    var decoded = unquote(format.value);
    if (decoded === null) return null;
    var chosen = canonical(decoded.replace(/ /g, '+'));
    return OFFERS.indexOf(chosen) !== -1 ? chosen : null;
}

function chooseContentType(accept, querystring) {
    var forced = formatParam(querystring);
    if (forced) return forced;
    var ranges = accept && strip(accept) ? parseAccept(accept) : null;
    if (!ranges || !ranges.length) return HTML;
    var best = null;
    for (var i = 0; i < OFFERS.length; i++) {
        var q = quality(OFFERS[i], ranges);
        if (q !== null && q > 0 && (best === null || q > best[0])) best = [q, OFFERS[i]];
    }
    return best ? best[1] : HTML;
}

// skypi.core.edge.redirect_query: a redirect keeps ?format= (its first value), nothing else.
function redirectQuery(querystring) {
    var format = querystring && querystring.format;
    return format && format.value !== undefined ? 'format=' + format.value : '';
}

function respond(status, description, headers, body) {
    var response = { statusCode: status, statusDescription: description, headers: {} };
    for (var name in headers) response.headers[name] = { value: headers[name] };
    if (body) response.body = { encoding: 'text', data: body };
    return response;
}

function redirect(location, querystring) {
    var query = redirectQuery(querystring);
    return respond(301, 'Moved Permanently', {
        location: query ? location + '?' + query : location,
        vary: 'Accept'
    });
}

function notFound() {
    return respond(404, 'Not Found', { 'content-type': 'text/plain' }, 'Not Found\n');
}

// skypi.core.edge._search: /project/?q=NAME, the search box's form without JavaScript, goes
// to that project's page (302: a search, not a move); no valid name is a 404.
function search(querystring) {
    var q = querystring && querystring.q;
    var typed = q && q.value !== undefined ? unquote(q.value.replace(/\+/g, '%20')) : null;
    var name = typed === null ? null : projectName(strip(typed));
    return name ? respond(302, 'Found', { location: '/project/' + name + '/' }) : notFound();
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
    return projectName(name) || '';
}

// skypi.core.edge.served_as_file: a distribution (by its extension) or its .metadata only.
function servedAsFile(filename) {
    filename = filename.replace(/\.metadata$/, '');
    var endings = SDIST_EXTENSIONS.concat(['.whl']);
    for (var i = 0; i < endings.length; i++) {
        if (filename.slice(-endings[i].length) === endings[i]) return true;
    }
    return false;
}

// skypi.core.edge.project_name: ASCII names only, so no look-alike names a project.
function projectName(text) {
    return VALID_NAME.test(text) ? normalize(text) : null;
}

// Of the decoded path: a page's name, a file's filename (its last segment).
function readProject(path) {
    if (path === '/simple' || path === '/simple/' || path === '/' || namespacePath(path)) return null;
    var named = /^\/(simple|project)\//.exec(path);
    if (named) return projectName(path.slice(named[0].length).replace(/\/$/, '')) || '';
    return projectOfFilename(path.slice(path.lastIndexOf('/') + 1));
}

// skypi.core.edge._namespace_path: PEP 752's endpoints (/simple/namespaces without its slash,
// /simple/namespace/<name>); /simple/namespaces/ and /simple/namespace/ are projects' pages.
function namespacePath(path) {
    return path === '/simple/namespaces' ||
        (path.indexOf('/simple/namespace/') === 0 && path !== '/simple/namespace/');
}

// skypi.core.edge._namespace: the stored JSON document, a redirect to the normalized name, or 404.
function namespace(request, path) {
    if (path === '/simple/namespaces') return toBucket(request, KEYS.namespaces + KEYS.nspage);
    var name = path.slice('/simple/namespace/'.length);
    var normalized = projectName(name);
    if (normalized === null) return notFound();
    if (normalized !== name) return redirect('/simple/namespace/' + normalized, request.querystring);
    return toBucket(request, KEYS.namespaces + normalized + '/' + KEYS.nspage);
}

// The token in a Basic header (skypi.core.tokens.credentials_from_header).
function tokenFromHeader(header) {
    if (!header) return null;
    var stripped = strip(header);
    var space = stripped.indexOf(' ');
    var scheme = space === -1 ? stripped : stripped.slice(0, space);
    var value = space === -1 ? '' : strip(stripped.slice(space + 1));
    if (!/^basic$/i.test(scheme) || !value) return null;
    if (!BASE64.test(value) || value.length % 4 !== 0) return null;
    var bytes = Buffer.from(value, 'base64');
    var decoded = bytes.toString('utf8');
    // Strict UTF-8: what does not survive the round trip was not UTF-8.
    if (Buffer.from(decoded, 'utf8').toString('hex') !== bytes.toString('hex')) return null;
    var colon = decoded.indexOf(':');
    if (colon === -1) return null;
    var user = decoded.slice(0, colon);
    var password = decoded.slice(colon + 1);
    // No password: only a token as the username counts; else 401, so pip asks its keyring.
    return password || (user.indexOf('skypi_') === 0 ? user : null);
}

async function lookup(hash) {
    if (kvs === null) kvs = cf.kvs(KVS_ID);
    try {
        return JSON.parse(await kvs.get(hash));
    } catch (e) {
        return null; // not there: unknown or revoked
    }
}

// skypi.core.tokens.TokenRecord.allows for a limited token: its projects, and the projects its
// namespaces (n) cover (PEP 752: acme covers acme and acme-*).
function limitedTo(entry, project) {
    if (entry.p.indexOf(project) !== -1) return true;
    var n = entry.n || [];
    for (var i = 0; i < n.length; i++) {
        if (project === n[i] || project.indexOf(n[i] + '-') === 0) return true;
    }
    return false;
}

// PEP 792: whether the project (a normalized name) is quarantined, by its record beside the
// token hashes. It rejects when the store cannot be read: the caller refuses then (fail
// closed, as a token that cannot be looked up is refused).
async function quarantined(project) {
    if (kvs === null) kvs = cf.kvs(KVS_ID);
    return await kvs.exists(KEYS.quarantined + project);
}

// null when the file may be served; else the 404 of a quarantined project's file (the same
// answer as for a file that is not there), or a 503 when that cannot be known. This runs
// before CloudFront looks in its cache, so no cached copy answers either.
async function withheld(filename) {
    var project = projectOfFilename(filename);
    try {
        if (!project || !(await quarantined(project))) return null;
    } catch (e) {
        return respond(503, 'Service Unavailable', { 'content-type': 'text/plain', 'retry-after': '1' },
            'Service Unavailable: could not check whether the project is quarantined; try again.\n');
    }
    return notFound();
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
    else if (entry.p !== null && project !== null && !limitedTo(entry, project)) {
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
        var coding = strip(parts[0]);
        var q = 1;
        for (var j = 1; j < parts.length; j++) {
            var param = strip(parts[j]);
            if (param.slice(0, 2) === 'q=') q = Q_VALUE.test(param.slice(2)) ? Number(param.slice(2)) : 0;
        }
        if (coding === 'gzip' || coding === 'x-gzip') return q > 0;
        if (coding === '*') star = q > 0;
    }
    return star;
}

// skypi.core.edge.origin_uri: every character but A-Z a-z 0-9 - . _ percent-encoded.
function encodeSegment(text) {
    return encodeURIComponent(text).replace(/[!'()*~]/g, function (c) {
        return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
}

function page(request, prefix) {
    var accept = request.headers.accept ? request.headers.accept.value : null;
    var encoding = request.headers['accept-encoding'];
    return toBucket(request, prefix + OBJECT[chooseContentType(accept, request.querystring)] +
        (encoding && acceptsGzip(encoding.value) ? KEYS.gzip : ''));
}

// skypi.core.edge.authorization_count: repeats of a header arrive as its multiValue, and
// no credential holds a comma (API Gateway joins repeats with one). A 400, or null.
function severalAuthorizations(request) {
    var authorization = request.headers.authorization;
    var values = authorization ? authorization.multiValue || [authorization] : [];
    if (values.map(function (v) { return v.value; }).join(',').split(',').length > 1) {
        return respond(400, 'Bad Request', { 'content-type': 'text/plain' },
            'Bad Request: send one Authorization header, not several.\n');
    }
    return null;
}

// skypi.core.edge.decide for a request route() reads: refused, redirected, or on its way to
// its object (toBucket), as the raw `path` says.
async function read(request, path) {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
        return respond(405, 'Method Not Allowed', { allow: 'GET, HEAD' }, 'Method Not Allowed\n');
    }
    var decoded = decodePath(path);
    if (decoded === null) {
        return respond(400, 'Bad Request', { 'content-type': 'text/plain' },
            'Bad Request: the path has a malformed or double percent-encoding, bytes that are ' +
            'not UTF-8, or a control character.\n');
    }
    if (READ_MODE === 'private') {
        var refusal = await denied(request, readProject(decoded));
        if (refusal) return refusal;
    }
    if (decoded === '/simple') return redirect('/simple/', request.querystring);
    if (decoded.indexOf('/packages/') === 0) {
        var parts = decoded.slice(1).split('/');
        for (var p = 1; p < parts.length; p++) {
            if (!parts[p] || parts[p].charAt(0) === '.') return notFound();
        }
        // Only distributions and their .metadata: nothing else put there is served.
        if (!servedAsFile(parts[parts.length - 1])) return notFound();
        var held = await withheld(parts[parts.length - 1]);
        if (held) return held;
        return toBucket(request, KEYS.packages + parts.slice(1).join('/'));
    }
    if (decoded === '/') return toBucket(request, KEYS.landing);
    if (namespacePath(decoded)) return namespace(request, decoded);
    var people = decoded.indexOf('/project/') === 0;
    var prefix = people ? '/project/' : '/simple/';
    var rest = decoded.slice(prefix.length);
    if (people && rest === '') return search(request.querystring);
    if (rest === '' && !people) return page(request, KEYS.pages);
    var slash = rest.charAt(rest.length - 1) === '/';
    var name = slash ? rest.slice(0, -1) : rest;
    var normalized = projectName(name);
    if (normalized === null) return notFound();
    if (name !== normalized || !slash) {
        return redirect(prefix + normalized + '/', request.querystring);
    }
    if (people) return toBucket(request, KEYS.site + normalized + '/' + KEYS.page);
    return page(request, KEYS.pages + normalized + '/');
}

// Boot hooks: a classic script that runs before any module. It creates
// `window.__kendali` and records every error the page meets (script errors,
// failed resources, rejected promises, CSP violations, console.error) so that
// tests and operators can read them, bounded to the last 50.
(function () {
  'use strict';
  var MAX_ERRORS = 50;
  var k = (window.__kendali = window.__kendali || {});
  k.errors = [];
  k.ready = false;
  k.bootedAt = Date.now();
  function note(kind, text) {
    if (k.errors.length >= MAX_ERRORS) k.errors.shift();
    k.errors.push({ kind: kind, text: String(text).slice(0, 500), at: new Date().toISOString() });
  }
  // Capture phase: resource load failures (a missing module, image) do not bubble.
  window.addEventListener('error', function (e) {
    if (e instanceof ErrorEvent) note('error', e.message + ' @ ' + e.filename + ':' + e.lineno);
    else if (e.target && (e.target.src || e.target.href)) note('resource', 'failed to load ' + (e.target.src || e.target.href));
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    note('rejection', e.reason && e.reason.stack ? e.reason.stack : e.reason);
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    note('csp', e.violatedDirective + ' blocked ' + e.blockedURI);
  });
  var consoleError = console.error.bind(console);
  console.error = function () {
    note('console', Array.prototype.map.call(arguments, String).join(' '));
    consoleError.apply(null, arguments);
  };
})();

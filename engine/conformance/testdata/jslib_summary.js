// A module in the shape of the jslib's k6-summary (index.js): a bundle that
// exports textSummary(data, {indent, enableColors}) and jUnit(data). Written
// for the tests; served by them over HTTPS as a remote module.
var defaultIndent = ' ';

function formatValue(metric, value) {
  if (metric.contains === 'time') {
    return value < 1000 ? value.toFixed(2) + 'ms' : (value / 1000).toFixed(2) + 's';
  }
  if (metric.contains === 'data') {
    return value + ' B';
  }
  return String(Math.round(value * 100) / 100);
}

function metricLine(name, metric) {
  var v = metric.values;
  switch (metric.type) {
    case 'trend':
      return Object.keys(v).map(function (k) { return k + '=' + formatValue(metric, v[k]); }).join(' ');
    case 'counter':
      return formatValue(metric, v.count) + ' ' + (Math.round(v.rate * 100) / 100) + '/s';
    case 'rate':
      return (v.rate * 100).toFixed(2) + '% ' + v.passes + ' out of ' + (v.passes + v.fails);
    default:
      return formatValue(metric, v.value) + ' min=' + v.min + ' max=' + v.max;
  }
}

function checkLines(group, indent) {
  var out = [];
  (group.checks || []).forEach(function (c) {
    out.push(indent + (c.fails === 0 ? '✓ ' : '✗ ') + c.name);
  });
  (group.groups || []).forEach(function (g) {
    out.push(indent + '█ ' + g.name);
    out = out.concat(checkLines(g, indent + '  '));
  });
  return out;
}

function textSummary(data, options) {
  var indent = (options && options.indent) || defaultIndent;
  var lines = checkLines(data.root_group, indent);
  lines.push('');
  Object.keys(data.metrics).sort().forEach(function (name) {
    var m = data.metrics[name];
    var mark = '';
    if (m.thresholds) {
      var ok = Object.keys(m.thresholds).every(function (t) { return m.thresholds[t].ok; });
      mark = ok ? '✓ ' : '✗ ';
    }
    lines.push(indent + mark + name + '...: ' + metricLine(name, m));
  });
  return lines.join('\n') + '\n';
}

function jUnit(data) {
  return '<testsuites></testsuites>';
}

export { jUnit, textSummary };

'use strict';
// The admin page: polls /api/stats every second, keeps two minutes of
// history in the page, and draws one small plot per figure. Rates are
// computed here from the server's counters.
(() => {
  const $ = (id) => document.getElementById(id);
  const HISTORY = 120;
  const headers = {'Content-Type': 'application/json', 'X-SC-Admin': '1'};

  // Figures shown as cards: a value from the sample, or a rate of a counter.
  const cards = [
    {key: 'clients', label: 'Connected clients', value: (s) => s.clients},
    {key: 'handshakes', label: 'Handshakes / s', rate: 'handshakes'},
    {key: 'publishes', label: 'Publishes / s', rate: 'publishes'},
    {key: 'deliveries', label: 'Deliveries / s', rate: 'deliveries'},
    {key: 'bytesIn', label: 'Bytes in / s', rate: 'bytesIn', bytes: true},
    {key: 'bytesOut', label: 'Bytes out / s', rate: 'bytesOut', bytes: true},
    {key: 'slowConsumers', label: 'Slow-consumer drops / s', rate: 'slowConsumers'},
    {key: 'brokerErrors', label: 'Broker errors / s', rate: 'brokerErrors'},
    {key: 'goroutines', label: 'Goroutines', value: (s) => s.goroutines},
    {key: 'heapBytes', label: 'Go heap in use', value: (s) => s.heapBytes, bytes: true},
  ];
  const history = Object.fromEntries(cards.map((c) => [c.key, []]));
  let previous = null;
  let timer = null;

  const fmt = (n, bytes) => {
    if (n == null || Number.isNaN(n)) return '–';
    if (bytes) {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
      return (i ? n.toFixed(1) : Math.round(n)) + ' ' + units[i];
    }
    if (Math.abs(n) >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString('en');
    return n.toFixed(2);
  };

  const buildCards = () => {
    const box = $('cards');
    box.textContent = '';
    for (const c of cards) {
      const el = document.createElement('div');
      el.className = 'card';
      el.innerHTML = '<div class="label"></div><div class="value">–</div><canvas width="240" height="36"></canvas>';
      el.querySelector('.label').textContent = c.label;
      el.querySelector('.value').id = 'v-' + c.key;
      el.querySelector('canvas').id = 'c-' + c.key;
      box.append(el);
    }
  };

  const draw = (canvas, values) => {
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (values.length < 2) return;
    const max = Math.max(...values), min = Math.min(0, ...values);
    const span = max - min || 1;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / (HISTORY - 1)) * w;
      const y = h - 2 - ((v - min) / span) * (h - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = '#2a6fb0';
    ctx.lineWidth = 1.5;
    ctx.stroke();
  };

  const badge = (el, ok, yes, no) => {
    el.textContent = ok ? yes : no;
    el.className = 'badge ' + (ok ? 'ok' : 'bad');
  };

  const cell = (tr, text, cls) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
    return td;
  };

  const render = (data) => {
    const s = data.self;
    $('instance').textContent = s.instance;
    badge($('ready'), s.ready, 'ready', 'not ready');
    badge($('broker'), s.brokerConnected, 'broker connected', 'broker down');
    $('uptime').textContent = 'up ' + Math.floor(s.uptime / 60) + ' min';
    const dt = previous ? (s.time - previous.time) / 1000 : 0;
    for (const c of cards) {
      let v;
      if (c.rate) {
        if (!previous || dt <= 0) continue;
        v = Math.max(0, (s[c.rate] - previous[c.rate]) / dt);
      } else {
        v = c.value(s);
      }
      const h = history[c.key];
      h.push(v);
      if (h.length > HISTORY) h.shift();
      $('v-' + c.key).textContent = fmt(v, c.bytes);
      draw($('c-' + c.key), h);
    }
    previous = s;

    const chans = $('channels');
    chans.textContent = '';
    for (const c of data.channels) {
      const tr = document.createElement('tr');
      cell(tr, c.channel);
      cell(tr, fmt(c.subscribers), 'num');
      chans.append(tr);
    }
    if (!data.channels.length) cell(chans.appendChild(document.createElement('tr')), 'no channels', 'muted');

    const cluster = $('cluster');
    cluster.textContent = '';
    for (const f of data.cluster) {
      const tr = document.createElement('tr');
      cell(tr, f.instance + (f.instance === s.instance && f.time === s.time ? ' (this one)' : ''));
      cell(tr, fmt(f.clients), 'num');
      cell(tr, fmt(f.channels), 'num');
      cell(tr, f.brokerConnected ? 'connected' : 'down');
      cell(tr, f.ready ? 'yes' : 'no');
      cell(tr, fmt(f.goroutines), 'num');
      cell(tr, fmt(f.heapBytes, true), 'num');
      cell(tr, Math.max(0, Math.round((s.time - f.time) / 1000)) + ' s ago', 'num');
      cluster.append(tr);
    }
  };

  const showLogin = (msg) => {
    clearInterval(timer);
    timer = null;
    $('main').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    $('password').focus();
  };

  const poll = async () => {
    try {
      const res = await fetch('api/stats', {headers, cache: 'no-store'});
      if (res.status === 401) return showLogin();
      if (!res.ok) throw new Error('HTTP ' + res.status);
      $('error').textContent = '';
      render(await res.json());
    } catch (err) {
      $('error').textContent = 'Cannot reach the server: ' + err.message;
    }
  };

  const showMain = () => {
    $('login').hidden = true;
    $('main').hidden = false;
    poll();
    if (!timer) timer = setInterval(poll, 1000);
  };

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const res = await fetch('api/login', {method: 'POST', headers, body: JSON.stringify({password: $('password').value})});
    $('password').value = '';
    if (res.ok) return showMain();
    const body = await res.json().catch(() => ({}));
    showLogin(body.error || ('HTTP ' + res.status));
  });

  $('logout').addEventListener('click', async () => {
    await fetch('api/logout', {method: 'POST', headers});
    showLogin('Logged out.');
  });

  const lookup = async () => {
    const q = $('lookup').value.trim();
    if (!q) return;
    const res = await fetch('api/sockets?q=' + encodeURIComponent(q), {headers});
    const body = await res.json().catch(() => ({}));
    const tbody = $('sockets');
    tbody.textContent = '';
    if (!res.ok) { $('lookup-status').textContent = body.error || ('HTTP ' + res.status); return; }
    $('lookup-status').textContent = body.sockets.length ? body.sockets.length + ' found' : 'No socket found for ' + q;
    for (const s of body.sockets) {
      const tr = document.createElement('tr');
      tr.dataset.id = s.id;
      cell(tr, s.id).className = 'socket-id';
      cell(tr, s.user || (s.authenticated ? '(authenticated)' : '–'));
      cell(tr, s.state);
      cell(tr, s.remoteAddress);
      cell(tr, fmt(s.channelCount), 'num').title = s.channels.join(', ');
      cell(tr, fmt(s.messagesIn), 'num');
      cell(tr, fmt(s.messagesOut), 'num');
      const btn = document.createElement('button');
      btn.textContent = 'Disconnect';
      btn.className = 'disconnect';
      btn.addEventListener('click', () => disconnect(s.id));
      tr.appendChild(document.createElement('td')).append(btn);
      tbody.append(tr);
    }
  };

  const disconnect = async (id) => {
    const res = await fetch('api/disconnect', {method: 'POST', headers, body: JSON.stringify({id})});
    const body = await res.json().catch(() => ({}));
    $('lookup-status').textContent = res.ok ? 'Disconnected ' + id : (body.error || ('HTTP ' + res.status));
    if (res.ok) setTimeout(lookup, 300);
  };

  $('lookup-form').addEventListener('submit', (e) => { e.preventDefault(); lookup(); });

  buildCards();
  showMain(); // the first poll shows the log-in form when there is no session
})();

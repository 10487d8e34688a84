// The login form, rendered on the server: it works before any script loads, and carries the CSRF
// token that the POST must send back.

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function loginPage(options: { csrf: string; message?: string; gatewayId: string; noPasswordFile: boolean; user?: string }): string {
  const message = options.message ? `<p class="error" role="alert">${escapeHtml(options.message)}</p>` : '';
  const hint = options.noPasswordFile
    ? '<p class="error" role="alert">No password file is configured (auth.passwordFile), so nobody can log in. Add users with <code>fieldgate passwd</code>.</p>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · fieldgate ${escapeHtml(options.gatewayId)}</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<main class="login">
<h1>fieldgate <span class="muted">${escapeHtml(options.gatewayId)}</span></h1>
<form method="post" action="/login">
<h2>Log in</h2>
${message}${hint}
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required${options.user ? ` value="${escapeHtml(options.user)}"` : ' autofocus'}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${options.user ? ' autofocus' : ''}>
<button type="submit">Log in</button>
<p class="muted">A user of the gateway's password file; the console then acts under that user's ACL.</p>
</form>
</main>
</body>
</html>
`;
}

// The billing page (/billing): current plan and status, the past_due warning, upgrade (checkout) and
// manage billing (the provider's portal). Checkout returns here with ?checkout=success.

import { api } from './api.js';
import { byId, h, notify } from './dom.js';
import { humanDate, humanSize, planLabel } from './format.js';
import { isDevMode, startSignedInPage } from './layout.js';

const FREE = 'free';
// After checkout the provider's webhook may land a little after the browser returns.
const CONFIRM_ATTEMPTS = 10;
const CONFIRM_DELAY_MS = 1500;

const STATUS_TEXT = {
  none: 'No subscription',
  active: 'Active',
  trialing: 'Trial',
  past_due: 'Payment overdue',
  canceled: 'Canceled',
  unpaid: 'Unpaid',
  incomplete: 'Waiting for payment',
  incomplete_expired: 'Payment not completed',
};

function showPlan(plan) {
  const badge = byId('billing-plan');
  badge.textContent = planLabel(plan.name);
  badge.dataset.plan = plan.name;
  byId('billing-status').textContent = STATUS_TEXT[plan.status] || plan.status;
  byId('billing-max-file').textContent = `${humanSize(plan.limits.max_file)} per file`;
  byId('billing-quota').textContent = `${humanSize(plan.limits.quota)} in all`;

  const hasPeriod = Boolean(plan.current_period_end) && plan.name !== FREE;
  byId('billing-period-label').hidden = !hasPeriod;
  byId('billing-period').hidden = !hasPeriod;
  byId('billing-period-label').textContent = plan.cancel_at_period_end ? 'Ends' : 'Renews';
  byId('billing-period').textContent = hasPeriod ? humanDate(plan.current_period_end) : '';

  const warning = byId('billing-warning');
  warning.textContent = plan.warning || '';
  warning.hidden = !plan.warning;
  const manage = byId('manage-billing');
  manage.hidden = plan.name === FREE && (plan.status === 'none' || !plan.status);
  // When payment needs fixing, that button is the way to fix it: make it the obvious one.
  manage.classList.toggle('button-primary', Boolean(plan.warning));
}

function showUpgrades(plan, offered) {
  const buttons = offered
    .filter((name) => name !== plan.name && plan.name === FREE)
    .map((name) => {
      const button = h(
        'button',
        { type: 'button', className: 'button button-primary', id: `upgrade-${name}`, dataset: { testid: `upgrade-${name}` } },
        `Upgrade to ${planLabel(name)}`,
      );
      button.addEventListener('click', () => goTo(button, '/api/billing/checkout', { plan: name }));
      return button;
    });
  byId('upgrade-plans').replaceChildren(...buttons);
  byId('upgrade').hidden = buttons.length === 0;
}

/** POST to a billing endpoint that answers {"url"} and send the browser there. */
async function goTo(button, path, body) {
  button.disabled = true;
  try {
    const { url } = await api(path, { method: 'POST', body });
    window.location.assign(url);
  } catch (error) {
    button.disabled = false;
    notify(error.message, { key: 'billing' });
  }
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Back from checkout: wait (briefly) for the paid plan to show up, then say so. */
async function confirmCheckout(me) {
  let current = me;
  const waiting = notify('Confirming your new plan…', { kind: 'info', key: 'checkout' });
  for (let attempt = 0; current.plan.name === FREE && attempt < CONFIRM_ATTEMPTS; attempt += 1) {
    await sleep(CONFIRM_DELAY_MS);
    try {
      current = await api('/api/me');
    } catch (_) {
      // Keep waiting; a later attempt may succeed.
    }
  }
  waiting.remove();
  if (current.plan.name === FREE) {
    notify('Your payment is still being confirmed. Reload this page in a minute to see your new plan.', { kind: 'info', key: 'checkout' });
  } else {
    const notice = notify(`Thank you! You are now on the ${planLabel(current.plan.name)} plan.`, { kind: 'success', key: 'checkout' });
    notice.id = 'checkout-success';
  }
  return current;
}

async function main() {
  let me = await startSignedInPage();
  if (!me) return;
  let offered = [];
  try {
    offered = (await api('/api/meta')).billing_plans || [];
  } catch (error) {
    notify(`Could not load the plans on offer: ${error.message}`, { key: 'meta' });
  }
  showPlan(me.plan);
  showUpgrades(me.plan, offered);
  byId('manage-billing').addEventListener('click', (event) => goTo(event.currentTarget, '/api/billing/portal'));
  if (isDevMode()) byId('upgrade-title').textContent = 'Upgrade (development checkout — no real payment)';

  const params = new URLSearchParams(window.location.search);
  const outcome = params.get('checkout');
  if (outcome) {
    // A reload should not announce the same checkout twice.
    window.history.replaceState(null, '', window.location.pathname);
    // "pending": the portal could not reach the provider yet; the webhook will catch up.
    if (outcome === 'success' || outcome === 'pending') {
      me = await confirmCheckout(me);
      showPlan(me.plan);
      showUpgrades(me.plan, offered);
    } else if (outcome === 'cancel' || outcome === 'canceled') {
      notify('Checkout canceled. You have not been charged.', { kind: 'info', key: 'checkout' });
    }
  }
}

main();

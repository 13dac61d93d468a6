// The billing page (/billing): current plan and status, the past_due warning, upgrade (checkout) and
// manage billing (the provider's portal). Checkout returns here with ?checkout=success.

import { api } from './api.js';
import { byId, h, notify } from './dom.js';
import { humanDate, humanSize, money, per, planLabel } from './format.js';
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
  // In words, so a canceled plan cannot be mistaken for one that renews.
  const renewal = byId('billing-renewal');
  renewal.hidden = !hasPeriod || Boolean(plan.warning);
  renewal.textContent = !hasPeriod ? '' : plan.cancel_at_period_end
    ? `Your ${planLabel(plan.name)} plan is canceled: it ends on ${humanDate(plan.current_period_end)} and will not renew. You keep its limits until then.`
    : `Your ${planLabel(plan.name)} plan renews on ${humanDate(plan.current_period_end)}.`;

  const warning = byId('billing-warning');
  warning.textContent = plan.warning || '';
  warning.hidden = !plan.warning;
  // A failed payment gets its own, obvious way to fix it (the provider's billing portal).
  byId('fix-payment').hidden = plan.status !== 'past_due';
  byId('manage-billing').hidden = plan.name === FREE && (plan.status === 'none' || !plan.status);
}

/** The plan comparison: every plan's price and limits, the current one marked, Upgrade where it applies. */
function showPlans(current, offered) {
  const cards = offered.plans.map((plan) => {
    const isCurrent = plan.name === current.name;
    const price = plan.price
      ? h('p', { className: 'plan-price', dataset: { testid: `plan-price-${plan.name}` } }, money(plan.price.amount, plan.price.currency), ' ', h('small', {}, per(plan.price)))
      : h('p', { className: 'plan-price', dataset: { testid: `plan-price-${plan.name}` } }, plan.name === FREE ? 'No charge' : '—');
    const heading = h('h3', { id: `plan-${plan.name}-title` }, planLabel(plan.name));
    if (isCurrent) heading.append(h('span', { className: 'current-tag', dataset: { testid: 'current-plan' } }, 'Your plan'));
    const card = h(
      'li',
      { className: 'plan', 'aria-labelledby': `plan-${plan.name}-title`, dataset: { testid: `plan-${plan.name}`, current: String(isCurrent) } },
      heading,
      price,
      h('ul', {}, h('li', {}, `Files up to ${humanSize(plan.limits.max_file)}`), h('li', {}, `${humanSize(plan.limits.quota)} of storage`)),
    );
    if (!isCurrent && plan.name !== FREE && current.name === FREE) {
      const button = h(
        'button',
        { type: 'button', className: 'button button-primary', id: `upgrade-${plan.name}`, dataset: { testid: `upgrade-${plan.name}` } },
        `Upgrade to ${planLabel(plan.name)}`,
      );
      button.addEventListener('click', () => goTo(button, '/api/billing/checkout', { plan: plan.name }));
      card.append(h('div', { className: 'actions' }, button));
    }
    return card;
  });
  byId('plans').replaceChildren(...cards);
  const unavailable = byId('prices-unavailable');
  unavailable.hidden = !offered.prices_error;
  unavailable.textContent = offered.prices_error ? 'Prices cannot be shown right now; checkout shows the price before you pay.' : '';
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
  let offered = { plans: [], prices_error: null };
  try {
    offered = await api('/api/billing/plans');
  } catch (error) {
    notify(`Could not load the plans on offer: ${error.message}`, { key: 'plans' });
  }
  showPlan(me.plan);
  showPlans(me.plan, offered);
  byId('manage-billing').addEventListener('click', (event) => goTo(event.currentTarget, '/api/billing/portal'));
  byId('fix-payment').addEventListener('click', (event) => goTo(event.currentTarget, '/api/billing/portal'));
  if (isDevMode()) byId('plans-note').textContent = 'Development mode: checkout takes no payment. A paid plan raises the largest file you can upload and the storage you get.';

  const params = new URLSearchParams(window.location.search);
  const outcome = params.get('checkout');
  if (outcome) {
    // A reload should not announce the same checkout twice.
    window.history.replaceState(null, '', window.location.pathname);
    // "pending": the portal could not reach the provider yet; the webhook will catch up.
    if (outcome === 'success' || outcome === 'pending') {
      me = await confirmCheckout(me);
      showPlan(me.plan);
      showPlans(me.plan, offered);
    } else if (outcome === 'cancel' || outcome === 'canceled') {
      notify('Checkout canceled. You have not been charged.', { kind: 'info', key: 'checkout' });
    }
  }
}

main();

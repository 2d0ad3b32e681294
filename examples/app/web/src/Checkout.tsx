import { useLDClient } from 'launchdarkly-react-client-sdk';

// Event keys, in one place: metrics-sync finds a key passed through a constant of the same file.
const EVENTS = {
  addToCart: 'add-to-cart',
  pageRendered: 'checkout-page-rendered',
};

export function Checkout({ cart, step, renderMs }: CheckoutProps) {
  const ldClient = useLDClient();
  ldClient?.track(EVENTS.pageRendered, undefined, renderMs);
  // Funnel steps send one event each: the key is only known at run time.
  ldClient?.track(`checkout-step-${step}`);
  return <Cart items={cart} onAdd={() => ldClient?.track(EVENTS.addToCart)} />;
}

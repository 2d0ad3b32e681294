import LaunchDarkly

struct CartView {
    func add(_ item: Item) {
        cart.append(item)
        LDClient.get()?.track(key: "add-to-cart")
    }
}
